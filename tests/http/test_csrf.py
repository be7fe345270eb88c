"""CSRF over HTTP: a state change needs our Origin and the session's CSRF token; a cross-site
POST carrying a valid cookie is refused with 403 and changes nothing."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.app_client import (
    EVIL_ORIGIN,
    PASSWORD,
    USERNAME,
    Browser,
    Server,
    Therapist,
    enrol,
    open_server,
)
from tests.support.clock import FakeClock
from vsession.config import Settings


@pytest.fixture
async def server(aiohttp_client: Any, settings: Settings, clock: FakeClock) -> Server:
    return await open_server(aiohttp_client, settings, clock)


@pytest.fixture
async def therapist(server: Server) -> Therapist:
    return await enrol(server)


async def signed_in(server: Server, therapist: Therapist) -> Browser:
    browser = server.browser()
    await browser.login(therapist.secret)
    return browser


FOREIGN_ORIGINS = [
    EVIL_ORIGIN,
    "null",
    "http://127.0.0.1:0.evil.example",
    "https://127.0.0.1:0",  # same host, other scheme
    "http://127.0.0.1:1",  # same host, other port
    "http://localhost:0",
    "",
]


@pytest.mark.parametrize("origin", FOREIGN_ORIGINS)
async def test_a_cross_origin_post_with_a_valid_cookie_is_refused(
    server: Server, therapist: Therapist, origin: str
) -> None:
    browser = await signed_in(server, therapist)
    assert browser.cookie and browser.csrf
    cookie = browser.cookie
    reply = await browser.post("/api/logout", origin=origin)
    assert reply.status == 403
    assert reply.set_cookie is None
    assert browser.cookie == cookie
    # Nothing changed: the session is alive and no logout was recorded.
    assert await server.session_exists(cookie)
    assert (await browser.me()).status == 200
    assert await server.audit("logout") == []


async def test_a_post_without_origin_is_refused(server: Server, therapist: Therapist) -> None:
    browser = await signed_in(server, therapist)
    reply = await browser.post("/api/logout", origin=None)
    assert reply.status == 403
    assert (await browser.me()).status == 200


@pytest.mark.parametrize("csrf", [None, "", "wrong-token", "x" * 43])
async def test_a_post_without_the_sessions_csrf_token_is_refused(
    server: Server, therapist: Therapist, csrf: str | None
) -> None:
    browser = await signed_in(server, therapist)
    reply = await browser.post("/api/logout", csrf=csrf)
    assert reply.status == 403
    assert "security token" in reply.body["error"]
    assert (await browser.me()).status == 200
    assert await server.audit("logout") == []


async def test_the_csrf_token_belongs_to_one_session(server: Server, therapist: Therapist) -> None:
    mine = await signed_in(server, therapist)
    server.next_step()
    other = await signed_in(server, therapist)
    assert mine.csrf != other.csrf
    assert (await mine.post("/api/logout", csrf=other.csrf)).status == 403
    assert (await mine.me()).status == 200
    # The right pair works.
    assert (await mine.post("/api/logout")).status == 200
    assert (await mine.get("/api/me")).status == 401
    assert (await other.me()).status == 200


async def test_cross_origin_requests_cannot_change_anything_else(
    server: Server, therapist: Therapist
) -> None:
    browser = await signed_in(server, therapist)
    evil = {"origin": EVIL_ORIGIN}
    assert (await browser.post("/api/setup-links", {"admin": True}, **evil)).status == 403
    assert await server.audit("setup_link.create") == [("setup_link.create", "", "ok")]  # only the fixture's
    assert (await browser.post("/api/password", {"current": PASSWORD, "new": "x" * 20}, **evil)).status == 403
    assert (await browser.post("/api/heartbeat", **evil)).status == 403
    # Login CSRF: no cross-site sign-in, no session, nothing recorded.
    before = await server.audit("login.password")
    attacker = server.browser()
    login = await attacker.post("/api/login", {"username": USERNAME, "password": PASSWORD}, **evil)
    assert login.status == 403
    assert login.set_cookie is None
    assert await server.audit("login.password") == before
    # Nor can a cross-site page finish someone's half-done sign-in.
    half = server.browser()
    assert (await half.password()).status == 200
    server.next_step()
    code = {"code": server.code(therapist.secret), "kind": "totp"}
    assert (await half.post("/api/login/code", code, **evil)).status == 403
    assert (await half.post("/api/login/code", code)).status == 200
    token = await server.setup_link()
    setup = await attacker.post(
        "/api/setup", {"token": token, "name": "M", "username": "mallory", "password": PASSWORD}, **evil
    )
    assert setup.status == 403
    assert await server.audit("therapist.create") == [("therapist.create", USERNAME, "ok")]
    assert (await browser.me()).status == 200


async def test_safe_methods_need_no_token(server: Server, therapist: Therapist) -> None:
    """GET changes nothing, so a page load needs neither token; it is what hands the token out."""
    browser = await signed_in(server, therapist)
    reply = await browser.get("/api/me")
    assert reply.status == 200
    assert reply.body["csrf"] == browser.csrf
