"""The sessions, links and waiting-room API as the tests drive it: a `Client` is one client device,
which keeps its own __Host-vsession-guest cookie and sends it by hand, because aiohttp's test client
will not send Secure cookies over http; the therapist's side is tests/support/app_client.py's
`Browser`. Nothing is mocked: a real app on a real SQLite file, driven by a fake clock.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import aiohttp

from tests.support.app_client import Browser, Reply, Server, Therapist
from vsession.appkeys import SERVICES
from vsession.auth.signins import COOKIE
from vsession.rooms.invites import GUEST_COOKIE
from vsession.services import Services

WS_TIMEOUT = 5  # only so a missing message fails the test instead of hanging it


def services(server: Server) -> Services:
    return server.app[SERVICES]


async def read_reply(response: aiohttp.ClientResponse) -> tuple[Reply, str | None]:
    """The reply, and the guest cookie it set (if any)."""
    async with response:
        text = await response.text()
        try:
            body: Any = json.loads(text)
        except ValueError:
            body = text
        morsel = response.cookies.get(GUEST_COOKIE)
        raw = response.headers.getall("Set-Cookie", [])
        return Reply(response.status, body, response.headers, None, raw), (morsel.value if morsel else None)


@dataclass
class Client:
    """One client device (browser) of a therapy session: its guest cookie, sent explicitly."""

    server: Server
    cookie: str | None = None
    therapist_cookie: str | None = None  # to show a therapist's cookie does not make a guest

    def headers(self, origin: str | None = None) -> dict[str, str]:
        cookies = []
        if self.cookie is not None:
            cookies.append(f"{GUEST_COOKIE}={self.cookie}")
        if self.therapist_cookie is not None:
            cookies.append(f"{COOKIE}={self.therapist_cookie}")
        headers = {"Origin": origin or self.server.origin}
        if cookies:
            headers["Cookie"] = "; ".join(cookies)
        return headers

    async def redeem(self, sid: str, token: str) -> Reply:
        response = await self.server.client.post(
            f"/api/join/{sid}/redeem", json={"token": token}, headers=self.headers()
        )
        reply, cookie = await read_reply(response)
        if cookie:
            self.cookie = cookie
        return reply

    async def status(self, sid: str) -> Reply:
        response = await self.server.client.get(f"/api/join/{sid}", headers=self.headers())
        return (await read_reply(response))[0]

    async def acknowledge(self, sid: str) -> Reply:
        """Acknowledge the privacy notice as shown, as the page has a client do first."""
        response = await self.server.client.get(f"/api/join/{sid}/notice", headers=self.headers())
        shown = (await read_reply(response))[0]
        if shown.status != 200:
            return shown
        notice = shown.body
        return await self.post(
            f"/api/join/{sid}/notice", {"version": notice["version"], "sha256": notice["sha256"]}
        )

    async def wait(self, sid: str, name: str = "Alice") -> Reply:
        """Enter the waiting room, after acknowledging the notice (the server requires it)."""
        await self.acknowledge(sid)
        response = await self.server.client.post(
            f"/api/join/{sid}/wait", json={"name": name}, headers=self.headers()
        )
        return (await read_reply(response))[0]

    async def post(self, path: str, body: Any = None) -> Reply:
        response = await self.server.client.post(path, json=body or {}, headers=self.headers())
        return (await read_reply(response))[0]

    async def socket(self, sid: str) -> aiohttp.ClientWebSocketResponse:
        return await self.server.client.ws_connect(f"/ws?role=guest&session={sid}", headers=self.headers())


async def therapist_socket(therapist: Therapist) -> aiohttp.ClientWebSocketResponse:
    browser = therapist.browser
    return await browser.server.client.ws_connect(
        "/ws?role=therapist",
        headers={"Origin": browser.server.origin, "Cookie": f"{COOKIE}={browser.cookie}"},
    )


async def receive(ws: aiohttp.ClientWebSocketResponse) -> Any:
    """The next JSON message (a close or anything else fails the test)."""
    message = await ws.receive(timeout=WS_TIMEOUT)
    assert message.type == aiohttp.WSMsgType.TEXT, message
    return json.loads(message.data)


async def create(
    browser: Browser, seats: int = 1, title: str = "Weekly", starts_in: float = 0, duration: int = 50
) -> str:
    reply = await browser.post(
        "/api/sessions",
        {
            "title": title,
            "starts_at": int(browser.server.clock.now() + starts_in),
            "duration_minutes": duration,
            "seats": seats,
        },
    )
    assert reply.status == 201, reply.body
    return reply.body["id"]


async def dashboard(browser: Browser) -> list[dict[str, Any]]:
    reply = await browser.get("/api/sessions")
    assert reply.status == 200, reply.body
    return reply.body["sessions"]


async def session_view(browser: Browser, sid: str) -> dict[str, Any] | None:
    return next((s for s in await dashboard(browser) if s["id"] == sid), None)


async def seat_view(browser: Browser, sid: str, seat: int = 1) -> dict[str, Any]:
    found = await session_view(browser, sid)
    assert found is not None, f"session {sid} is not on the dashboard"
    return next(s for s in found["seats"] if s["seat"] == seat)


async def token_of(browser: Browser, sid: str, seat: int = 1) -> str:
    link = (await seat_view(browser, sid, seat))["link"]
    assert link is not None, "the seat has no copyable link"
    assert link.startswith(f"{browser.server.origin}/j/{sid}#t=")
    return link.split("#t=", 1)[1]


async def audit_entries(server: Server, action: str | None = None) -> list[dict[str, Any]]:
    """Every audit entry (details parsed), oldest first, optionally of one action."""
    rows = await server.ctx.db.fetchall("SELECT * FROM audit_log ORDER BY seq")
    entries = [{**dict(r), "details": json.loads(r["details"])} for r in rows]
    return [e for e in entries if action in (None, e["action"])]


async def db_rows(server: Server, sid: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The session's row and its seats' rows, straight from SQLite."""
    db = server.ctx.db
    session = await db.fetchall("SELECT * FROM therapy_sessions WHERE id = ?", (sid,))
    seats = await db.fetchall("SELECT * FROM seats WHERE session_id = ? ORDER BY seat", (sid,))
    return [dict(r) for r in session], [dict(r) for r in seats]


async def therapist_id(server: Server, username: str) -> int:
    row = await server.ctx.db.fetchone("SELECT id FROM therapists WHERE username = ?", (username,))
    assert row is not None
    return int(row["id"])
