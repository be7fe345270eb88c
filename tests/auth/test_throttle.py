"""Throttling over HTTP: growing delays, lockout after 10 failures (password and TOTP together),
unknown usernames treated exactly like known ones, and the per-IP limit."""

from __future__ import annotations

import math
from typing import Any

from tests.support.app_client import PASSWORD, USERNAME, Reply, Server, Therapist, enrol, open_server
from tests.support.clock import FakeClock
from vsession.auth import login, throttle
from vsession.config import Settings

WRONG_PASSWORD = "not the password, clearly"


async def wrong_password(server: Server, username: str = USERNAME) -> Reply:
    return await server.browser().password(username, WRONG_PASSWORD)


async def wrong_code(server: Server, therapist: Therapist) -> Reply:
    """A correct password (not a failure), then a wrong TOTP code (a failure)."""
    browser = server.browser()
    first = await browser.password()
    assert first.status == 200, first.body
    return await browser.send_code(server.wrong_code(therapist.secret))


def assert_too_early(reply: Reply, wait: float) -> None:
    assert reply.status == 429, reply.body
    assert reply.headers["Retry-After"] == str(math.ceil(wait))
    assert reply.body == {"error": throttle.SLOW_DOWN.format(seconds=math.ceil(wait))}


async def test_lockout_after_ten_failures_even_with_the_right_password(
    server: Server, enrolled_therapist: Therapist
) -> None:
    settings = server.settings
    assert settings.lockout_threshold == 10
    for failures in range(settings.lockout_threshold):
        wait = throttle.delay_after(failures)
        if wait:
            # Too early: refused before the password is even looked at, correct or not.
            assert_too_early(await server.browser().password(), wait)
            server.clock.advance(wait - 0.5)
            assert_too_early(await wrong_password(server), 0.5)
            server.clock.advance(0.5)
        # Password and TOTP failures count together.
        if failures % 2:
            reply = await wrong_code(server, enrolled_therapist)
            assert reply.body == {"error": login.WRONG_CODE}
        else:
            reply = await wrong_password(server)
            assert reply.body == {"error": login.BAD_CREDENTIALS}
        assert reply.status == 401, (failures, reply.body)

    # The 11th attempt: right password, and still refused, for the whole lockout.
    locked = await server.browser().password()
    assert locked.status == 429
    assert locked.body == {"error": throttle.LOCKED}
    assert locked.headers["Retry-After"] == str(settings.lockout_minutes * 60)
    assert locked.set_cookie is None
    server.clock.advance(settings.lockout_minutes * 60 - 1)
    still = await server.browser().password()
    assert still.status == 429
    assert still.headers["Retry-After"] == "1"

    server.clock.advance(1)
    browser = server.browser()
    await browser.login(enrolled_therapist.secret)
    assert (await browser.me()).body["username"] == USERNAME

    assert await server.audit("login.lockout") == [("login.lockout", USERNAME, "ok")]
    password_outcomes = [o for _, _, o in await server.audit("login.password")]
    assert password_outcomes.count("throttled") >= 3
    assert password_outcomes.count("fail") == 5
    assert [o for _, _, o in await server.audit("login.totp")] == ["fail"] * 5 + ["ok"]


async def test_after_the_lock_lifts_the_count_starts_again(
    server: Server, enrolled_therapist: Therapist
) -> None:
    settings = server.settings
    for failures in range(settings.lockout_threshold):
        server.clock.advance(throttle.delay_after(failures))
        assert (await wrong_password(server)).status == 401
    server.clock.advance(settings.lockout_minutes * 60)
    # One typo after the lock does not lock again, and asks for no wait.
    assert (await wrong_password(server)).status == 401
    assert (await server.browser().password()).status == 200


async def test_an_unknown_username_is_answered_and_locked_exactly_like_a_known_one(
    server: Server, enrolled_therapist: Therapist
) -> None:
    def seen(reply: Reply) -> tuple[Any, ...]:
        return (reply.status, reply.body, reply.headers.get("Retry-After"), reply.set_cookie)

    for failures in range(server.settings.lockout_threshold + 1):
        wait = throttle.delay_after(failures)
        if wait:
            assert seen(await wrong_password(server, USERNAME)) == seen(
                await wrong_password(server, "nobody")
            )
            server.clock.advance(wait)
        known = await wrong_password(server, USERNAME)
        unknown = await wrong_password(server, "nobody")
        assert seen(known) == seen(unknown)
        if failures < server.settings.lockout_threshold:
            assert known.status == 401
            assert known.body == {"error": login.BAD_CREDENTIALS}
        else:
            assert known.status == 429
            assert known.body == {"error": throttle.LOCKED}

    # An unknown name is logged only as its keyed hash (it may be a password typed in the wrong box).
    lockouts = await server.audit("login.lockout")
    assert sorted(obj for _, obj, _ in lockouts) == ["ada", await throttle.hidden_name(server.ctx, "nobody")]


async def test_the_username_is_normalised_before_counting(
    aiohttp_client: Any, settings: Settings, clock: FakeClock
) -> None:
    server = await open_server(aiohttp_client, settings, clock, lockout_threshold=3)
    await enrol(server)
    for failures, name in enumerate(["ADA", " ada ", "Ａｄａ"]):
        server.clock.advance(throttle.delay_after(failures))
        assert (await wrong_password(server, name)).status == 401
    locked = await server.browser().password()
    assert locked.status == 429
    assert locked.body == {"error": throttle.LOCKED}


async def test_per_ip_limit_refuses_attempts_across_usernames(
    aiohttp_client: Any, settings: Settings, clock: FakeClock
) -> None:
    server = await open_server(aiohttp_client, settings, clock, ip_failure_limit=5)
    therapist = await enrol(server)
    for n in range(5):
        reply = await wrong_password(server, f"guess{n}")
        assert reply.status == 401, (n, reply.body)

    # No single account has more than one failure; the address has five.
    for name, password in ((USERNAME, PASSWORD), ("guess9", WRONG_PASSWORD)):
        refused = await server.browser().password(name, password)
        assert refused.status == 429
        assert refused.body == {"error": throttle.IP_LIMIT}
        assert refused.headers["Retry-After"] == str(throttle.IP_WINDOW_SECONDS)

    server.clock.advance(throttle.IP_WINDOW_SECONDS + 1)
    await server.browser().login(therapist.secret)


async def test_failure_counters_are_forgotten_so_a_username_spray_cannot_grow_the_table(
    aiohttp_client: Any, settings: Settings, clock: FakeClock
) -> None:
    server = await open_server(aiohttp_client, settings, clock, ip_failure_limit=1000)
    for n in range(50):
        assert (await wrong_password(server, f"spray{n}")).status == 401

    async def counters() -> int:
        row = await server.ctx.db.fetchone("SELECT count(*) FROM login_failures")
        return int(row[0])

    assert await counters() == 50
    # A day without failures later, the next failure sweeps the old counters; this one stays.
    server.clock.advance(throttle.FAILURE_MEMORY_SECONDS + 1)
    assert (await wrong_password(server, "spray-late")).status == 401
    assert await counters() == 1


async def test_a_lock_outlives_the_sweep_while_it_holds(
    aiohttp_client: Any, settings: Settings, clock: FakeClock
) -> None:
    server = await open_server(aiohttp_client, settings, clock, lockout_minutes=48 * 60)
    await enrol(server)
    for failures in range(server.settings.lockout_threshold):
        server.clock.advance(throttle.delay_after(failures))
        await wrong_password(server)
    server.clock.advance(throttle.FAILURE_MEMORY_SECONDS + 1)
    await wrong_password(server, "someone-else")  # sweeps
    locked = await server.browser().password()
    assert locked.status == 429 and locked.body == {"error": throttle.LOCKED}


async def test_the_per_address_count_stores_no_address(server: Server) -> None:
    assert (await wrong_password(server, "someone")).status == 401
    rows = await server.ctx.db.fetchall("SELECT ip FROM ip_failures")
    assert len(rows) == 1
    stored = rows[0][0]
    assert "127.0.0.1" not in stored and stored.startswith("hmac:")
    assert stored == await throttle.hidden_address(server.ctx, "127.0.0.1")
