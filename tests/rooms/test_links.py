"""One-time client links: bad, revoked, expired and reused links are refused with the sentence the
client page shows; the same device may reload; guessing is limited per IP."""

from __future__ import annotations

import secrets

import aiohttp

from tests.support.app_client import Server, Therapist
from tests.support.rooms_api import Client, audit_entries, create, db_rows, seat_view, services, token_of
from vsession.rooms import invites, sessions
from vsession.signaling import ratelimit

GRACE = 120  # minutes: the default settings.link_grace_minutes, asserted below


def tampered(token: str) -> str:
    return ("B" if token[0] == "A" else "A") + token[1:]


async def test_tampered_foreign_and_garbage_tokens_are_refused(server: Server, ada: Therapist) -> None:
    sid = await create(ada.browser, seats=2)
    other = await create(ada.browser)
    token, others_token = await token_of(ada.browser, sid), await token_of(ada.browser, other)
    rows = await db_rows(server, sid)
    device = Client(server)

    for bad in (tampered(token), others_token, "not-a-token", token + "x", ""):
        reply = await device.redeem(sid, bad)
        assert (reply.status, reply.body) == (404, {"error": invites.INVALID}), bad
        assert not any(c.startswith(invites.GUEST_COOKIE) for c in reply.raw_set_cookie)
        assert device.cookie is None
    invalid = [e for e in await audit_entries(server, "link.redeem") if e["outcome"] == "invalid"]
    assert len(invalid) == 5
    assert all(e["object"] == f"session:{sid}" for e in invalid)

    # The refusals consumed nothing: both genuine links still work on their own sessions.
    assert await db_rows(server, sid) == rows
    assert (await Client(server).redeem(other, others_token)).status == 200
    assert (await Client(server).redeem(sid, token)).status == 200


async def test_a_reissued_link_revokes_the_old_one(server: Server, ada: Therapist) -> None:
    sid = await create(ada.browser)
    old = await token_of(ada.browser, sid)
    reissued = await ada.browser.post(f"/api/sessions/{sid}/seats/1/reissue")
    assert reissued.status == 200, reissued.body
    new = reissued.body["link"].split("#t=", 1)[1]
    assert new != old
    assert await token_of(ada.browser, sid) == new

    refused = await Client(server).redeem(sid, old)
    assert (refused.status, refused.body) == (404, {"error": invites.INVALID})
    assert (await Client(server).redeem(sid, new)).status == 200


async def test_a_link_expires_a_grace_period_after_the_scheduled_end(server: Server, ada: Therapist) -> None:
    assert server.settings.link_grace_minutes == GRACE
    sid = await create(ada.browser, seats=3, duration=50)
    early, on_time, late = [await token_of(ada.browser, sid, n) for n in (1, 2, 3)]
    alice = Client(server)
    assert (await alice.redeem(sid, early)).status == 200

    # Until the scheduled end plus the grace period the links and cookies work...
    server.clock.advance(50 * 60 + GRACE * 60)
    assert (await Client(server).redeem(sid, on_time)).status == 200
    assert (await alice.status(sid)).status == 200

    # ...and a second later they do not.
    server.clock.advance(1)
    refused = await Client(server).redeem(sid, late)
    assert (refused.status, refused.body) == (410, {"error": invites.ENDED})
    assert (await alice.status(sid)).status == 401
    assert (await alice.redeem(sid, early)).status == 410

    # Once housekeeping has closed the session the answer is still the clear "ended" one.
    assert await sessions.close_overdue(services(server)) == 1
    refused = await Client(server).redeem(sid, late)
    assert (refused.status, refused.body) == (410, {"error": invites.ENDED})
    assert (await alice.status(sid)).status == 401


async def test_a_link_works_once_per_device(server: Server, ada: Therapist) -> None:
    sid = await create(ada.browser, seats=2)
    token, second_seat = await token_of(ada.browser, sid, 1), await token_of(ada.browser, sid, 2)
    alice = Client(server)
    first = await alice.redeem(sid, token)
    assert (first.status, first.body) == (200, {"ok": True})
    assert alice.cookie is not None
    (cookie,) = [c for c in first.raw_set_cookie if c.startswith(f"{invites.GUEST_COOKIE}=")]
    attributes = {a.strip().lower() for a in cookie.split(";")[1:]}
    assert {"httponly", "secure", "samesite=strict", "path=/"} <= attributes
    seat = await seat_view(ada.browser, sid)
    assert (seat["state"], seat["link"], seat["reuse_attempts"]) == ("joined", None, 0)

    # Another browser with the same link: refused, counted, audited.
    eve = Client(server)
    reused = await eve.redeem(sid, token)
    assert (reused.status, reused.body) == (409, {"error": invites.USED})
    assert "already used" in invites.USED
    assert eve.cookie is None
    assert (await seat_view(ada.browser, sid))["reuse_attempts"] == 1
    (entry,) = await audit_entries(server, "link.reuse")
    assert (entry["object"], entry["outcome"], entry["details"]) == (f"session:{sid}", "refused", {"seat": 1})

    # A device holding another seat's cookie is not this seat's device either.
    bob = Client(server)
    assert (await bob.redeem(sid, second_seat)).status == 200
    assert (await bob.redeem(sid, token)).status == 409
    assert (await seat_view(ada.browser, sid))["reuse_attempts"] == 2
    assert len(await audit_entries(server, "link.reuse")) == 2

    # The device that redeemed it may reload its page: no new cookie, same seat, nothing counted.
    again = await alice.redeem(sid, token)
    assert (again.status, again.body) == (200, {"ok": True})
    assert not any(c.startswith(invites.GUEST_COOKIE) for c in again.raw_set_cookie)
    status = await alice.status(sid)
    assert (status.status, status.body["seat"], status.body["state"]) == (200, 1, "joined")
    assert (await seat_view(ada.browser, sid))["reuse_attempts"] == 2
    assert len(await audit_entries(server, "link.redeem")) == 2  # alice and bob, once each


async def test_guessing_links_is_rate_limited_per_ip(server: Server, ada: Therapist) -> None:
    sid = await create(ada.browser, seats=2)
    token, spare = await token_of(ada.browser, sid, 1), await token_of(ada.browser, sid, 2)
    guesser = Client(server)
    for _ in range(ratelimit.GUESS_LIMIT):
        assert (await guesser.redeem(sid, secrets.token_urlsafe(32))).status == 404

    limited = await guesser.redeem(sid, secrets.token_urlsafe(32))
    assert (limited.status, limited.body) == (429, {"error": invites.TOO_MANY})
    assert limited.headers["Retry-After"] == str(ratelimit.GUESS_WINDOW_SECONDS)
    # From that IP even a genuine link waits (and is not used up by the refusal).
    assert (await Client(server).redeem(sid, token)).status == 429
    assert (await seat_view(ada.browser, sid))["state"] == "invited"

    # Another IP is not affected.
    local = aiohttp.TCPConnector(local_addr=("127.0.0.2", 0))
    async with aiohttp.ClientSession(connector=local) as elsewhere:
        async with elsewhere.post(
            server.client.make_url(f"/api/join/{sid}/redeem"),
            json={"token": token},
            headers={"Origin": server.origin},
        ) as response:
            assert response.status == 200, await response.text()

    # When the window has passed the first IP may try again.
    server.clock.advance(ratelimit.GUESS_WINDOW_SECONDS + 1)
    assert (await Client(server).redeem(sid, spare)).status == 200
