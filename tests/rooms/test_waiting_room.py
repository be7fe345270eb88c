"""The waiting room over HTTP: wait, admit, deny, remove, reissue; ending a session by hand and by
housekeeping."""

from __future__ import annotations

import aiohttp
import pytest

from tests.support.app_client import Server, Therapist
from tests.support.rooms_api import (
    Client,
    audit_entries,
    create,
    dashboard,
    seat_view,
    services,
    therapist_id,
    token_of,
)
from vsession.rooms import invites, sessions

GONE = {"error": "Please open the link your therapist sent you."}


async def test_wait_then_admit(server: Server, ada: Therapist) -> None:
    sid = await create(ada.browser, title="Weekly")
    alice = Client(server)
    assert (await alice.redeem(sid, await token_of(ada.browser, sid))).status == 200
    status = await alice.status(sid)
    assert status.status == 200
    assert status.body == {
        "session": sid,
        "title": "Weekly",
        "therapist": "Dr. Ada Example",
        "seat": 1,
        "state": "joined",
        "name": "",
    }
    # Admitting someone who is not waiting yet is refused.
    assert (await ada.browser.post(f"/api/sessions/{sid}/seats/1/admit")).status == 409

    waited = await alice.wait(sid, "  Alice \n  Smith ")
    assert (waited.status, waited.body) == (200, {"state": "waiting"})
    seat = await seat_view(ada.browser, sid)
    assert (seat["state"], seat["name"]) == ("waiting", "Alice Smith")

    admitted = await ada.browser.post(f"/api/sessions/{sid}/seats/1/admit")
    assert (admitted.status, admitted.body) == (200, {"ok": True})
    assert (await alice.status(sid)).body["state"] == "admitted"
    assert (await seat_view(ada.browser, sid))["state"] == "admitted"
    # A reload that announces the name again does not send an admitted client back to the waiting room.
    assert (await alice.wait(sid, "Alice")).body == {"state": "admitted"}
    assert (await ada.browser.post(f"/api/sessions/{sid}/seats/1/admit")).status == 409


async def test_a_denied_client_cannot_come_back_without_a_reissued_link(
    server: Server, ada: Therapist
) -> None:
    sid = await create(ada.browser)
    token = await token_of(ada.browser, sid)
    alice = Client(server)
    assert (await alice.redeem(sid, token)).status == 200
    assert (await alice.wait(sid)).status == 200

    denied = await ada.browser.post(f"/api/sessions/{sid}/seats/1/deny")
    assert (denied.status, denied.body) == (200, {"ok": True})
    for reply in (await alice.status(sid), await alice.wait(sid)):
        assert (reply.status, reply.body) == (401, GONE)
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await alice.socket(sid)
    assert refused.value.status == 401
    seat = await seat_view(ada.browser, sid)
    assert (seat["state"], seat["link"]) == ("denied", None)

    # Neither the old link (from this device or another) nor the therapist's admit brings them back.
    assert (await alice.redeem(sid, token)).body == {"error": invites.INVALID}
    assert (await Client(server).redeem(sid, token)).status == 404
    assert (await ada.browser.post(f"/api/sessions/{sid}/seats/1/admit")).status == 409
    assert (await alice.status(sid)).status == 401

    # A reissued link does; the old link and the old cookie stay dead.
    reissued = await ada.browser.post(f"/api/sessions/{sid}/seats/1/reissue")
    assert reissued.status == 200
    new = reissued.body["link"].split("#t=", 1)[1]
    assert (await Client(server).redeem(sid, token)).status == 404
    assert (await alice.status(sid)).status == 401
    again = Client(server)
    assert (await again.redeem(sid, new)).status == 200
    assert (await again.status(sid)).body["state"] == "joined"
    assert (await again.wait(sid)).body == {"state": "waiting"}


async def test_a_removed_client_loses_the_seat(server: Server, ada: Therapist) -> None:
    sid = await create(ada.browser)
    alice = Client(server)
    assert (await alice.redeem(sid, await token_of(ada.browser, sid))).status == 200
    assert (await alice.wait(sid)).status == 200
    # Only someone in the session can be removed, only someone waiting denied.
    assert (await ada.browser.post(f"/api/sessions/{sid}/seats/1/remove")).status == 409
    assert (await ada.browser.post(f"/api/sessions/{sid}/seats/1/admit")).status == 200
    assert (await ada.browser.post(f"/api/sessions/{sid}/seats/1/deny")).status == 409

    assert (await ada.browser.post(f"/api/sessions/{sid}/seats/1/remove")).status == 200
    assert (await alice.status(sid)).status == 401
    assert (await seat_view(ada.browser, sid))["state"] == "removed"
    assert (await ada.browser.post(f"/api/sessions/{sid}/seats/1/admit")).status == 409


async def test_ending_a_session_stops_every_link_and_cookie(server: Server, ada: Therapist) -> None:
    sid = await create(ada.browser, seats=3)
    first, second, third = [await token_of(ada.browser, sid, n) for n in (1, 2, 3)]
    other = await create(ada.browser, title="Another")
    alice, bob = Client(server), Client(server)
    assert (await alice.redeem(sid, first)).status == 200
    assert (await alice.wait(sid)).status == 200
    assert (await ada.browser.post(f"/api/sessions/{sid}/seats/1/admit")).status == 200
    assert (await bob.redeem(sid, second)).status == 200  # joined, not waiting yet

    ended = await ada.browser.post(f"/api/sessions/{sid}/end")
    assert (ended.status, ended.body) == (200, {"ok": True})

    for guest in (alice, bob):
        assert ((await guest.status(sid)).status, (await guest.status(sid)).body) == (401, GONE)
        assert (await guest.wait(sid)).status == 401
    for device, token in ((alice, first), (bob, second), (Client(server), third)):
        refused = await device.redeem(sid, token)
        assert (refused.status, refused.body) == (410, {"error": invites.ENDED})
    # The session and its links are gone from the dashboard; the other session is not.
    assert [s["id"] for s in await dashboard(ada.browser)] == [other]
    assert await token_of(ada.browser, other)

    for path in ("end", "seats/3/reissue", "seats/2/admit"):
        assert (await ada.browser.post(f"/api/sessions/{sid}/{path}")).status == 409, path
    (entry,) = await audit_entries(server, "session.end")
    assert entry["object"] == f"session:{sid}"
    assert entry["actor"] == f"therapist:{await therapist_id(server, 'ada')}"
    assert entry["details"] == {"reason": "ended by therapist"}


async def test_overdue_sessions_are_closed_by_housekeeping(server: Server, ada: Therapist) -> None:
    grace = server.settings.link_grace_minutes * 60
    sid = await create(ada.browser, duration=50)
    later = await create(ada.browser, starts_in=24 * 3600, title="Tomorrow")
    alice = Client(server)
    assert (await alice.redeem(sid, await token_of(ada.browser, sid))).status == 200
    unused = await token_of(ada.browser, later)

    server.clock.advance(50 * 60 + grace - 1)
    assert await sessions.close_overdue(services(server)) == 0
    await ada.browser.login(ada.secret)  # the sign-in went idle meanwhile
    assert {s["id"] for s in await dashboard(ada.browser)} == {sid, later}

    server.clock.advance(2)
    assert await sessions.close_overdue(services(server)) == 1
    assert [s["id"] for s in await dashboard(ada.browser)] == [later]
    (entry,) = await audit_entries(server, "session.end")
    assert (entry["object"], entry["actor"]) == (f"session:{sid}", "system")
    assert entry["details"] == {"reason": "scheduled end passed"}
    assert (await alice.status(sid)).status == 401
    # The later session's link still works.
    assert (await Client(server).redeem(later, unused)).status == 200
    # Running again closes nothing more.
    assert await sessions.close_overdue(services(server)) == 0
    assert len(await audit_entries(server, "session.end")) == 1
