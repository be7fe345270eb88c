"""Link guessing is limited per link (the session in the URL) and per address, so one person's bad
links do not lock out another behind the same address (a family's router, a proxy); only many more
bad links from that address stop everyone there. The counts live in bounded memory."""

from __future__ import annotations

import secrets
import sys

from tests.support.app_client import Server, Therapist
from tests.support.rooms_api import Client, create, seat_view, token_of
from vsession.rooms import invites
from vsession.signaling import ratelimit


def guess() -> str:
    return secrets.token_urlsafe(32)


async def test_a_genuine_link_works_after_someone_else_guessed_from_the_same_address(
    server: Server, ada: Therapist
) -> None:
    mine = await create(ada.browser)
    token = await token_of(ada.browser, mine)
    theirs = await create(ada.browser)
    neighbour = Client(server)  # same address: every test request comes from 127.0.0.1
    for _ in range(ratelimit.GUESS_LIMIT):
        assert (await neighbour.redeem(theirs, guess())).status == 404
    # The neighbour's own link is now limited...
    limited = await neighbour.redeem(theirs, guess())
    assert (limited.status, limited.body) == (429, {"error": invites.TOO_MANY})

    # ...and a client of another session, behind the same address, still gets in.
    client = Client(server)
    assert (await client.redeem(mine, token)).status == 200
    assert (await seat_view(ada.browser, mine))["state"] == "joined"
    # Guesses at other sessions are not limited by that one either.
    for _ in range(5):
        assert (await neighbour.redeem(secrets.token_hex(8), guess())).status == 404


async def test_many_more_bad_links_from_one_address_stop_everyone_there(
    server: Server, ada: Therapist
) -> None:
    sid = await create(ada.browser)
    token = await token_of(ada.browser, sid)
    scanner = Client(server)
    # Never more than a few per session, so only the address's ceiling can stop it.
    for n in range(ratelimit.ADDRESS_LIMIT):
        assert (await scanner.redeem(f"s{n // 5}", guess())).status == 404, n
    refused = await Client(server).redeem(sid, token)
    assert (refused.status, refused.body) == (429, {"error": invites.TOO_MANY_HERE})
    assert refused.headers["Retry-After"] == str(ratelimit.GUESS_WINDOW_SECONDS)
    assert (await seat_view(ada.browser, sid))["state"] == "invited"  # the refusal used nothing up

    server.clock.advance(ratelimit.GUESS_WINDOW_SECONDS)
    assert (await Client(server).redeem(sid, token)).status == 200


def test_the_counts_stay_bounded_across_100000_addresses() -> None:
    counter = ratelimit.FailureCounter(window=900, max_keys=ratelimit.MAX_KEYS)
    now = 1_800_000_000.0
    for n in range(100_000):
        counter.fail(f"10.{n >> 16}.{(n >> 8) & 255}.{n & 255}", now + n * 0.001)
        assert len(counter) <= ratelimit.MAX_KEYS
    assert len(counter) == ratelimit.MAX_KEYS
    # The newest addresses are the ones kept, and still counted.
    assert counter.failures("10.1.134.159", now + 100) == 1  # n = 99_999
    assert counter.failures("10.0.0.0", now + 100) == 0
    # A rough upper bound of what it holds: well under a few megabytes.
    size = sys.getsizeof(counter._counts) + sum(
        sys.getsizeof(k) + sys.getsizeof(v) for k, v in counter._counts.items()
    )
    assert size < 4 * 1024 * 1024, size


def test_failures_are_counted_per_window() -> None:
    counter = ratelimit.FailureCounter(window=60, max_keys=10)
    for _ in range(3):
        counter.fail("a", 1000.0)
    assert counter.failures("a", 1059.0) == 3
    assert counter.retry_after("a", 1030.0) == 30
    assert counter.failures("a", 1060.0) == 0  # the window has passed
    counter.fail("a", 1060.0)
    assert counter.failures("a", 1060.0) == 1
