"""The real app on a real SQLite file under aiohttp's test client, driven by a fake clock, and a
therapist's browser speaking to it over HTTP, for the sign-in, session and CSRF tests.

aiohttp's test client will not send a Secure cookie over plain http, so each `Browser` keeps the
`__Host-vsession` cookie itself (from Set-Cookie) and sends it, the Origin header and the CSRF
token explicitly. Nothing is mocked: the clock is the only thing the tests control.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from http.cookies import Morsel
from typing import Any

import aiohttp
import pyotp
from aiohttp import web
from aiohttp.test_utils import TestClient

from tests.support.clock import FakeClock
from vsession.app import create_app
from vsession.appkeys import AUTH
from vsession.auth import enrolment, totp
from vsession.auth.context import AuthContext
from vsession.auth.signins import COOKIE
from vsession.auth.tokens import token_hash
from vsession.config import Settings

PASSWORD = "violet kettle harbour quietly 42"
NEW_PASSWORD = "amber lantern drifting softly 7"
USERNAME = "ada"
EVIL_ORIGIN = "https://evil.example"
_DEFAULT = object()


@dataclass
class Reply:
    status: int
    body: Any
    headers: Any
    set_cookie: Morsel[str] | None
    raw_set_cookie: list[str]


@dataclass
class Server:
    client: TestClient[Any, Any]
    app: web.Application
    clock: FakeClock
    settings: Settings

    @property
    def ctx(self) -> AuthContext:
        return self.app[AUTH]

    @property
    def origin(self) -> str:
        # What the app compares Origin with (port 0 in the fixture settings, not the test port).
        return self.settings.origin

    def browser(self) -> Browser:
        return Browser(self)

    async def setup_link(self, admin: bool = True) -> str:
        """A fresh one-time setup token, made the way `serve` and the CLI make them."""
        url = await enrolment.create_link(self.ctx, None, admin)
        assert url.startswith(f"{self.origin}/setup#t=")
        return url.split("#t=", 1)[1]

    async def audit(self, action: str | None = None) -> list[tuple[str, str, str]]:
        """(action, object, outcome) of every audit entry, oldest first, optionally of one action."""
        rows = await self.ctx.db.fetchall("SELECT action, object, outcome FROM audit_log ORDER BY seq")
        return [(r["action"], r["object"], r["outcome"]) for r in rows if action in (None, r["action"])]

    async def session_exists(self, cookie: str) -> bool:
        row = await self.ctx.db.fetchone(
            "SELECT count(*) FROM web_sessions WHERE token_hash = ?", (token_hash(cookie),)
        )
        assert row is not None
        return row[0] == 1

    def code(self, secret: str, offset_steps: int = 0) -> str:
        """The TOTP code of the step `offset_steps` away from the fake clock's current one."""
        return pyotp.TOTP(secret).at(self.clock.now() + offset_steps * totp.STEP)

    def wrong_code(self, secret: str) -> str:
        """A well-formed code that is valid for neither the current nor the previous step."""
        valid = {self.code(secret), self.code(secret, -1)}
        return next(c for c in ("123456", "654321", "111111") if c not in valid)

    def next_step(self) -> None:
        """Move the fake clock into the next TOTP step, so a fresh code exists."""
        self.clock.advance(totp.STEP)


@dataclass
class Browser:
    """One user agent: its session cookie and CSRF token, and the right Origin on every POST."""

    server: Server
    cookie: str | None = None
    csrf: str | None = None
    cookies_seen: list[str] = field(default_factory=list)

    def _absorb(self, response: aiohttp.ClientResponse) -> tuple[Morsel[str] | None, list[str]]:
        raw = response.headers.getall("Set-Cookie", [])
        morsel = response.cookies.get(COOKIE)
        if morsel is not None:
            self.cookie = morsel.value or None
            if morsel.value:
                self.cookies_seen.append(morsel.value)
        return morsel, raw

    async def _reply(self, response: aiohttp.ClientResponse) -> Reply:
        async with response:
            morsel, raw = self._absorb(response)
            text = await response.text()
            try:
                body: Any = await response.json(content_type=None)
            except ValueError:
                body = text
            return Reply(response.status, body, response.headers, morsel, raw)

    def _headers(self, cookie: Any, origin: Any, csrf: Any) -> dict[str, str]:
        headers: dict[str, str] = {}
        cookie = self.cookie if cookie is _DEFAULT else cookie
        origin = self.server.origin if origin is _DEFAULT else origin
        csrf = self.csrf if csrf is _DEFAULT else csrf
        if cookie is not None:
            headers["Cookie"] = f"{COOKIE}={cookie}"
        if origin is not None:
            headers["Origin"] = origin
        if csrf is not None:
            headers["X-CSRF-Token"] = csrf
        return headers

    async def get(self, path: str, *, cookie: Any = _DEFAULT) -> Reply:
        headers = self._headers(cookie, None, None)
        return await self._reply(await self.server.client.get(path, headers=headers))

    async def post(
        self,
        path: str,
        body: Any = None,
        *,
        cookie: Any = _DEFAULT,
        origin: Any = _DEFAULT,
        csrf: Any = _DEFAULT,
    ) -> Reply:
        headers = self._headers(cookie, origin, csrf)
        response = await self.server.client.post(path, json={} if body is None else body, headers=headers)
        return await self._reply(response)

    async def me(self) -> Reply:
        reply = await self.get("/api/me")
        if reply.status == 200:
            self.csrf = reply.body["csrf"]
        return reply

    async def password(self, username: str = USERNAME, password: str = PASSWORD) -> Reply:
        return await self.post("/api/login", {"username": username, "password": password})

    async def send_code(self, code: str, kind: str = "totp") -> Reply:
        return await self.post("/api/login/code", {"code": code, "kind": kind})

    async def login(self, secret: str, username: str = USERNAME, password: str = PASSWORD) -> None:
        """Password, then the current step's code; leaves a full session with its CSRF token."""
        first = await self.password(username, password)
        assert first.status == 200, first.body
        assert first.body == {"next": "totp"}
        second = await self.send_code(self.server.code(secret))
        assert second.status == 200, second.body
        assert (await self.me()).status == 200


@dataclass
class Therapist:
    username: str
    password: str
    secret: str
    recovery_codes: list[str]
    browser: Browser  # signed in with a full session


async def open_server(aiohttp_client: Any, settings: Settings, clock: FakeClock, **overrides: Any) -> Server:
    settings = dataclasses.replace(settings, **overrides)
    app = create_app(settings, clock=clock)
    # A jar that keeps nothing: every test sends exactly the cookie it means to.
    client = await aiohttp_client(app, cookie_jar=aiohttp.DummyCookieJar())
    return Server(client, app, clock, settings)


async def enrol(
    server: Server,
    username: str = USERNAME,
    password: str = PASSWORD,
    name: str = "Dr. Ada Example",
    token: str | None = None,
) -> Therapist:
    """Setup link → /api/setup → GET /api/enrol (secret) → POST /api/enrol with a code.

    The clock is then moved one step on, so the test's first sign-in has an unused code.
    """
    token = token or await server.setup_link()
    browser = server.browser()
    setup = await browser.post(
        "/api/setup", {"token": token, "name": name, "username": username, "password": password}
    )
    assert setup.status == 200, setup.body
    details = await browser.get("/api/enrol")
    assert details.status == 200, details.body
    secret = details.body["secret"]
    browser.csrf = details.body["csrf"]
    done = await browser.post("/api/enrol", {"code": server.code(secret)})
    assert done.status == 200, done.body
    assert (await browser.me()).status == 200
    server.next_step()
    return Therapist(username, password, secret, done.body["recovery_codes"], browser)
