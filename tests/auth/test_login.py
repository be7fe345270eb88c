"""Sign-in over HTTP: a TOTP code is accepted once, concurrent logins race for it, step-up."""

from __future__ import annotations

import asyncio

from tests.support.app_client import NEW_PASSWORD, PASSWORD, USERNAME, Server, Therapist
from vsession.auth import login


async def test_a_totp_code_is_accepted_once(server: Server, enrolled_therapist: Therapist) -> None:
    secret = enrolled_therapist.secret
    code = server.code(secret)
    first = server.browser()
    await first.login(secret)

    # Same code, same step window, after a fresh (correct) password step: refused as a replay.
    again = server.browser()
    assert (await again.password()).body == {"next": "totp"}
    replay = await again.send_code(code)
    assert replay.status == 401
    assert replay.body == {"error": login.WRONG_CODE}
    assert replay.set_cookie is None
    assert ("login.totp", USERNAME, "replay") in await server.audit("login.totp")
    assert (await again.get("/api/me")).status == 401

    # The previous step's code is inside the accepted window but older than the step just used.
    older = await again.send_code(server.code(secret, -1))
    assert older.status == 401
    assert (await again.get("/api/me")).status == 401

    # The next step's code works with the very same password-stage session.
    server.next_step()
    fresh = await again.send_code(server.code(secret))
    assert fresh.status == 200, fresh.body
    assert (await again.me()).status == 200
    outcomes = [outcome for _, _, outcome in await server.audit("login.totp")]
    assert outcomes == ["ok", "replay", "replay", "ok"]


async def test_a_code_older_than_the_last_used_step_is_refused(
    server: Server, enrolled_therapist: Therapist
) -> None:
    secret = enrolled_therapist.secret
    server.next_step()  # the enrolment step is now two behind: the previous step was never used
    await server.browser().login(secret)
    unused_older = server.code(secret, -1)

    browser = server.browser()
    assert (await browser.password()).status == 200
    reply = await browser.send_code(unused_older)
    assert reply.status == 401
    assert (await browser.get("/api/me")).status == 401
    assert (await server.audit("login.totp"))[-1] == ("login.totp", USERNAME, "replay")


async def test_a_previous_step_code_is_accepted_when_unused(
    server: Server, enrolled_therapist: Therapist
) -> None:
    """The window is current + previous step (typing time), so the replay guard is what refuses above."""
    server.next_step()
    server.next_step()  # the enrolment step is three behind; the last two steps were never used
    secret = enrolled_therapist.secret
    browser = server.browser()
    assert (await browser.password()).status == 200
    # Two steps back is outside the window, although never used.
    assert (await browser.send_code(server.code(secret, -2))).status == 401
    assert (await server.audit("login.totp"))[-1][2] == "fail"
    reply = await browser.send_code(server.code(secret, -1))
    assert reply.status == 200, reply.body


async def test_two_concurrent_logins_with_one_code_only_one_succeeds(
    server: Server, enrolled_therapist: Therapist
) -> None:
    a, b = server.browser(), server.browser()
    assert (await a.password()).status == 200
    assert (await b.password()).status == 200
    code = server.code(enrolled_therapist.secret)

    replies = await asyncio.gather(a.send_code(code), b.send_code(code))

    assert sorted(r.status for r in replies) == [200, 401]
    winner, loser = (a, b) if replies[0].status == 200 else (b, a)
    assert (await winner.me()).status == 200
    assert (await loser.get("/api/me")).status == 401
    outcomes = sorted(outcome for _, _, outcome in await server.audit("login.totp"))
    assert outcomes == ["ok", "replay"]


async def test_the_password_stage_expires_after_five_minutes(
    server: Server, enrolled_therapist: Therapist
) -> None:
    browser = server.browser()
    assert (await browser.password()).status == 200
    server.clock.advance(5 * 60 + 1)
    reply = await browser.send_code(server.code(enrolled_therapist.secret))
    assert reply.status == 401
    assert reply.body == {"error": login.SIGN_IN_AGAIN}


async def test_code_step_without_a_password_step_is_refused(
    server: Server, enrolled_therapist: Therapist
) -> None:
    browser = server.browser()
    assert (await browser.send_code(server.code(enrolled_therapist.secret))).status == 401
    # A full session is not a password-stage session either: the code step cannot be repeated on it.
    full = enrolled_therapist.browser
    assert (await full.send_code(server.code(enrolled_therapist.secret))).status == 401


async def test_password_change_needs_a_fresh_code_after_five_minutes(
    server: Server, enrolled_therapist: Therapist
) -> None:
    browser = server.browser()
    await browser.login(enrolled_therapist.secret)

    # Within five minutes of the code no step-up is asked (the wrong current password shows we got in).
    early = await browser.post("/api/password", {"current": "not my password at all", "new": NEW_PASSWORD})
    assert early.status == 400, early.body
    assert "step_up" not in early.body

    server.clock.advance(5 * 60 + 1)
    change = {"current": PASSWORD, "new": NEW_PASSWORD}
    late = await browser.post("/api/password", change)
    assert late.status == 403
    assert late.body["step_up"] is True
    assert (await browser.me()).status == 200  # the session itself is fine

    # A wrong or reused code does not count as a step-up.
    assert (
        await browser.post("/api/step-up", {"code": server.wrong_code(enrolled_therapist.secret)})
    ).status == 401
    assert (await browser.post("/api/password", change)).status == 403

    server.next_step()
    step_up = await browser.post("/api/step-up", {"code": server.code(enrolled_therapist.secret)})
    assert step_up.status == 200, step_up.body
    replayed = await browser.post("/api/step-up", {"code": server.code(enrolled_therapist.secret)})
    assert replayed.status == 401

    old_cookie = browser.cookie
    changed = await browser.post("/api/password", change)
    assert changed.status == 200, changed.body
    assert changed.set_cookie is not None and browser.cookie != old_cookie
    assert (await browser.get("/api/me", cookie=old_cookie)).status == 401
    assert (await browser.me()).status == 200
    # Other sessions of the account end with a password change.
    assert (await enrolled_therapist.browser.get("/api/me")).status == 401
    assert ("password.change", USERNAME, "ok") in await server.audit("password.change")

    old = await server.browser().password(USERNAME, PASSWORD)
    assert old.status == 401
    assert old.body == {"error": login.BAD_CREDENTIALS}
    new = await server.browser().password(USERNAME, NEW_PASSWORD)
    assert new.status == 200
    assert new.body == {"next": "totp"}


async def test_step_up_is_needed_at_once_after_a_recovery_code_sign_in(
    server: Server, enrolled_therapist: Therapist
) -> None:
    browser = server.browser()
    assert (await browser.password()).status == 200
    assert (await browser.send_code(enrolled_therapist.recovery_codes[0], kind="recovery")).status == 200
    assert (await browser.me()).status == 200
    reply = await browser.post("/api/password", {"current": PASSWORD, "new": NEW_PASSWORD})
    assert reply.status == 403
    assert reply.body["step_up"] is True
