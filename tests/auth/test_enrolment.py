"""Setup links, TOTP enrolment and recovery codes over HTTP."""

from __future__ import annotations

import asyncio

from tests.support.app_client import PASSWORD, USERNAME, Server, Therapist, enrol
from vsession.auth import enrolment, login, recovery


async def setup(server: Server, token: str, username: str = "bob", password: str = PASSWORD) -> tuple:
    reply = await server.browser().post(
        "/api/setup", {"token": token, "name": "Bob Colleague", "username": username, "password": password}
    )
    return reply.status, reply.body


async def test_enrolment_needs_a_valid_code_and_gives_ten_recovery_codes(server: Server) -> None:
    token = await server.setup_link()
    browser = server.browser()
    reply = await browser.post(
        "/api/setup", {"token": token, "name": "Dr. Ada", "username": USERNAME, "password": PASSWORD}
    )
    assert reply.status == 200, reply.body
    assert reply.body == {"next": "/enrol"}
    details = await browser.get("/api/enrol")
    assert details.status == 200
    secret = details.body["secret"]
    assert details.body["qr"].startswith("data:image/svg+xml")
    browser.csrf = details.body["csrf"]
    # Not yet a full session, and a sign-in now must go back to enrolment.
    assert (await browser.get("/api/me")).status == 401
    assert (await server.browser().password()).body == {"next": "enrol"}

    wrong = await browser.post("/api/enrol", {"code": server.wrong_code(secret)})
    assert wrong.status == 400
    assert wrong.set_cookie is None
    assert (await browser.get("/api/me")).status == 401

    done = await browser.post("/api/enrol", {"code": server.code(secret)})
    assert done.status == 200, done.body
    codes = done.body["recovery_codes"]
    assert len(codes) == 10 and len(set(codes)) == 10
    assert all(len(recovery.normalise(c)) == 16 for c in codes)
    me = await browser.me()
    assert me.status == 200
    assert me.body["recovery_codes_left"] == 10
    assert me.body["is_admin"] is True
    # The enrolment stage is over: its details are no longer shown to anyone.
    assert (await browser.get("/api/enrol")).status == 401
    # The code used to enrol is spent.
    other = server.browser()
    assert (await other.password()).body == {"next": "totp"}
    assert (await other.send_code(server.code(secret))).status == 401


async def test_a_recovery_code_signs_in_once(server: Server, enrolled_therapist: Therapist) -> None:
    code = enrolled_therapist.recovery_codes[3]
    browser = server.browser()
    assert (await browser.password()).status == 200
    reply = await browser.send_code(code, kind="recovery")
    assert reply.status == 200, reply.body
    me = await browser.me()
    assert me.status == 200
    assert me.body["recovery_codes_left"] == 9
    assert ("login.recovery", USERNAME, "ok") in await server.audit("login.recovery")

    again = server.browser()
    assert (await again.password()).status == 200
    reused = await again.send_code(code, kind="recovery")
    assert reused.status == 401
    assert reused.body == {"error": login.WRONG_RECOVERY}
    assert (await again.get("/api/me")).status == 401
    assert ("login.recovery", USERNAME, "fail") in await server.audit("login.recovery")
    # Typed as people type them: upper case, no dashes, spaces.
    loose = enrolled_therapist.recovery_codes[4].upper().replace("-", " ")
    assert (await again.send_code(loose, kind="recovery")).status == 200
    # A recovery code is not a TOTP code, nor the other way round.
    third = server.browser()
    assert (await third.password()).status == 200
    assert (await third.send_code(enrolled_therapist.recovery_codes[5], kind="totp")).status == 401
    assert (await third.send_code(server.code(enrolled_therapist.secret), kind="recovery")).status == 401


async def test_a_setup_link_works_once(server: Server) -> None:
    token = await server.setup_link()
    await enrol(server, token=token)
    status, body = await setup(server, token, username="mallory")
    assert status == 400
    assert body == {"error": enrolment.BAD_LINK}
    assert (await server.browser().password("mallory", PASSWORD)).status == 401


async def test_a_setup_link_expires(server: Server) -> None:
    minutes = server.settings.setup_link_minutes
    expiring = await server.setup_link()
    still_good = await server.setup_link()
    server.clock.advance(minutes * 60 - 1)
    assert (await setup(server, still_good, username="bob"))[0] == 200
    server.clock.advance(1)
    status, body = await setup(server, expiring, username="carol")
    assert status == 400
    assert body == {"error": enrolment.BAD_LINK}


async def test_a_link_that_is_not_a_token_is_refused(server: Server) -> None:
    for token in ("", "abc", "x" * 43 + "!", "A" * 43):
        status, body = await setup(server, token)
        assert (status, body) == (400, {"error": enrolment.BAD_LINK}), token


async def test_weak_passwords_are_refused_and_the_link_stays_usable(server: Server) -> None:
    token = await server.setup_link()
    status, body = await setup(server, token, password="correcthorsebatterystaple")
    assert status == 400
    assert "too common" in body["error"]
    status, body = await setup(server, token, password="short pw 1")
    assert status == 400
    assert "too short" in body["error"] and "12" in body["error"]
    status, body = await setup(server, token, username="harbourmaster77", password="HarbourMaster77")
    assert status == 400
    assert "username" in body["error"]
    # Nothing was created by the refused attempts, and the link still works.
    assert await server.audit("therapist.create") == []
    status, body = await setup(server, token, password="unicode passphrase: überall grüne Bäume")
    assert status == 200, body


async def test_a_taken_username_leaves_the_link_usable(server: Server, enrolled_therapist: Therapist) -> None:
    token = await server.setup_link()
    status, _ = await setup(server, token, username="ADA")
    assert status == 409
    # The existing account is untouched.
    await server.browser().login(enrolled_therapist.secret)
    assert (await setup(server, token, username="bob"))[0] == 200


async def test_only_an_admin_can_create_setup_links(server: Server, enrolled_therapist: Therapist) -> None:
    admin = enrolled_therapist.browser
    assert (await admin.me()).body["is_admin"] is True
    made = await admin.post("/api/setup-links", {"admin": False})
    assert made.status == 200, made.body
    url = made.body["url"]
    assert url.startswith(f"{server.origin}/setup#t=")
    assert made.body["expires_minutes"] == server.settings.setup_link_minutes

    colleague = await enrol(server, username="bob", name="Bob", token=url.split("#t=", 1)[1])
    me = await colleague.browser.me()
    assert me.body["is_admin"] is False
    refused = await colleague.browser.post("/api/setup-links", {"admin": False})
    assert refused.status == 403
    assert "url" not in refused.body
    refused_admin = await colleague.browser.post("/api/setup-links", {"admin": True})
    assert refused_admin.status == 403
    # Nor without a session at all.
    assert (await server.browser().post("/api/setup-links", {"admin": False})).status == 401
    creations = await server.audit("setup_link.create")
    assert len(creations) == 2  # the fixture's link and the admin's, none by the colleague


async def test_two_concurrent_enrolments_with_one_code_only_one_succeeds(server: Server) -> None:
    """A double-submitted enrolment form must not mint two sessions and two sets of recovery codes
    (the set shown first would then be silently replaced by the second)."""
    token = await server.setup_link()
    browser = server.browser()
    reply = await browser.post(
        "/api/setup", {"token": token, "name": "Dr. Ada", "username": USERNAME, "password": PASSWORD}
    )
    assert reply.status == 200, reply.body
    details = await browser.get("/api/enrol")
    browser.csrf = details.body["csrf"]
    code = server.code(details.body["secret"])

    replies = await asyncio.gather(*(browser.post("/api/enrol", {"code": code}) for _ in range(2)))

    assert sorted(r.status for r in replies) == [200, 401]
    [winner] = [r for r in replies if r.status == 200]
    [loser] = [r for r in replies if r.status == 401]
    assert loser.body == {"error": enrolment.ENROLMENT_EXPIRED}
    assert loser.set_cookie is None
    # The codes that were shown are the ones that work.
    server.next_step()
    other = server.browser()
    assert (await other.password()).status == 200
    assert (await other.send_code(winner.body["recovery_codes"][0], kind="recovery")).status == 200
    assert (await other.me()).body["recovery_codes_left"] == 9


async def test_two_concurrent_setups_with_one_link_only_one_succeeds(server: Server) -> None:
    token = await server.setup_link()
    replies = await asyncio.gather(
        setup(server, token, username="bob"), setup(server, token, username="carol")
    )
    assert sorted(status for status, _ in replies) == [200, 400]
    assert len(await server.audit("therapist.create")) == 1
