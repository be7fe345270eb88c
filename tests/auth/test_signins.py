"""Web sessions over HTTP: cookie flags, a new token at each stage, logout on the server,
idle and absolute timeouts driven by the fake clock, heartbeats as activity."""

from __future__ import annotations

from tests.support.app_client import Reply, Server, Therapist, enrol
from vsession.auth.signins import COOKIE
from vsession.auth.tokens import looks_like_token


def assert_session_cookie(reply: Reply) -> None:
    assert reply.set_cookie is not None, f"no {COOKIE} cookie set"
    morsel = reply.set_cookie
    assert looks_like_token(morsel.value)  # 43 url-safe base64 characters = 256 bits
    assert morsel["secure"] is True
    assert morsel["httponly"] is True
    assert morsel["samesite"] == "Strict"
    assert morsel["path"] == "/"
    assert morsel["domain"] == ""
    # And in the header as sent, not only as parsed.
    [raw] = [h for h in reply.raw_set_cookie if h.startswith(f"{COOKIE}=")]
    attributes = {part.strip().split("=")[0].lower(): part.strip() for part in raw.split(";")[1:]}
    assert {"secure", "httponly", "samesite", "path"} <= attributes.keys()
    assert "domain" not in attributes
    assert attributes["samesite"] == "SameSite=Strict"
    assert attributes["path"] == "Path=/"


async def test_every_session_cookie_has_the_host_prefix_flags(server: Server) -> None:
    token = await server.setup_link()
    browser = server.browser()
    setup = await browser.post(
        "/api/setup",
        {"token": token, "name": "Ada", "username": "ada", "password": "violet kettle 42 harbour"},
    )
    assert setup.status == 200, setup.body
    assert_session_cookie(setup)
    details = await browser.get("/api/enrol")
    browser.csrf = details.body["csrf"]
    enrolled = await browser.post("/api/enrol", {"code": server.code(details.body["secret"])})
    assert enrolled.status == 200, enrolled.body
    assert_session_cookie(enrolled)
    assert len(enrolled.body["recovery_codes"]) == 10
    server.next_step()

    other = server.browser()
    password = await other.password("ada", "violet kettle 42 harbour")
    assert_session_cookie(password)
    code = await other.send_code(server.code(details.body["secret"]))
    assert_session_cookie(code)

    # Logout clears the cookie with the same attributes (a __Host- cookie is only replaced that way).
    await other.me()
    logout = await other.post("/api/logout")
    assert logout.status == 200
    assert logout.set_cookie is not None
    assert logout.set_cookie.value == ""
    assert logout.set_cookie["max-age"] == "0"
    assert logout.set_cookie["path"] == "/" and logout.set_cookie["secure"] is True
    assert logout.set_cookie["domain"] == ""


async def test_a_new_token_at_each_stage_and_the_old_ones_die(server: Server) -> None:
    therapist = await enrol(server)
    setup_token, full_after_enrol = therapist.browser.cookies_seen
    assert setup_token != full_after_enrol
    assert not await server.session_exists(setup_token)
    assert (await therapist.browser.get("/api/enrol", cookie=setup_token)).status == 401

    browser = server.browser()
    assert (await browser.password()).status == 200
    password_stage = browser.cookie
    assert password_stage is not None
    assert await server.session_exists(password_stage)
    assert (await browser.send_code(server.code(therapist.secret))).status == 200
    full = browser.cookie
    assert full is not None and full != password_stage
    assert (await browser.get("/api/me", cookie=full)).status == 200

    # The password-stage token is gone on the server, so it cannot even finish a second sign-in.
    assert not await server.session_exists(password_stage)
    assert (await browser.get("/api/me", cookie=password_stage)).status == 401
    server.next_step()
    again = await browser.post(
        "/api/login/code", {"code": server.code(therapist.secret), "kind": "totp"}, cookie=password_stage
    )
    assert again.status == 401
    # Nor is a token ever reused between sign-ins.
    other = server.browser()
    await other.login(therapist.secret)
    assert other.cookie not in (full, password_stage)


async def test_logout_ends_the_session_on_the_server(server: Server, enrolled_therapist: Therapist) -> None:
    browser = server.browser()
    await browser.login(enrolled_therapist.secret)
    cookie = browser.cookie
    assert cookie is not None
    assert (await browser.post("/api/logout")).status == 200
    assert not await server.session_exists(cookie)
    # The old cookie value replayed, e.g. from a copy the browser kept: refused everywhere.
    assert (await browser.get("/api/me", cookie=cookie)).status == 401
    assert (await browser.post("/api/heartbeat", cookie=cookie)).status == 401
    # Other sessions of the same therapist are untouched.
    assert (await enrolled_therapist.browser.get("/api/me")).status == 200
    assert ("logout", "", "ok") in await server.audit("logout")


async def test_idle_timeout(server: Server, enrolled_therapist: Therapist) -> None:
    idle = server.settings.idle_timeout_minutes * 60
    browser = server.browser()
    await browser.login(enrolled_therapist.secret)
    server.clock.advance(idle - 1)
    assert (await browser.get("/api/me")).status == 200  # activity: the idle time starts again
    server.clock.advance(idle - 1)
    assert (await browser.get("/api/me")).status == 200
    server.clock.advance(idle + 60)
    assert (await browser.get("/api/me")).status == 401
    assert browser.cookie is not None
    assert not await server.session_exists(browser.cookie)


async def test_heartbeats_keep_a_session_alive_past_the_idle_timeout(
    server: Server, enrolled_therapist: Therapist
) -> None:
    idle_minutes = server.settings.idle_timeout_minutes
    browser = server.browser()
    await browser.login(enrolled_therapist.secret)
    elapsed = 0
    while elapsed <= 3 * idle_minutes:
        server.clock.advance(20 * 60)
        elapsed += 20
        beat = await browser.post("/api/heartbeat")
        assert beat.status == 200, (elapsed, beat.body)
    assert (await browser.get("/api/me")).status == 200

    # Without them, the same session ends.
    server.clock.advance(20 * 60)
    server.clock.advance(20 * 60)
    assert (await browser.post("/api/heartbeat")).status == 401


async def test_absolute_timeout_ends_even_an_active_session(
    server: Server, enrolled_therapist: Therapist
) -> None:
    limit = server.settings.absolute_timeout_hours * 3600
    browser = server.browser()
    await browser.login(enrolled_therapist.secret)
    elapsed = 0
    while elapsed + 20 * 60 < limit:
        server.clock.advance(20 * 60)
        elapsed += 20 * 60
        assert (await browser.post("/api/heartbeat")).status == 200, elapsed
    server.clock.advance(limit - elapsed - 60)
    assert (await browser.post("/api/heartbeat")).status == 200
    server.clock.advance(2 * 60)  # one minute past the limit
    assert (await browser.post("/api/heartbeat")).status == 401
    assert (await browser.get("/api/me")).status == 401
    # A new sign-in gives a new session with a new 12 hours.
    server.next_step()
    fresh = server.browser()
    await fresh.login(enrolled_therapist.secret)
    assert fresh.cookie != browser.cookie
