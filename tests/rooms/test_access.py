"""Object-level access: a therapist acts only on their own sessions, a guest cookie only on its own
session and seat. Every refusal is checked to have changed nothing."""

from __future__ import annotations

import aiohttp
import pytest

from tests.support.app_client import Server, Therapist
from tests.support.rooms_api import (
    Client,
    audit_entries,
    create,
    dashboard,
    db_rows,
    seat_view,
    session_view,
    therapist_id,
    therapist_socket,
    token_of,
)
from vsession.rooms import access


async def test_another_therapist_cannot_see_or_act_on_a_session(
    server: Server, ada: Therapist, bob: Therapist
) -> None:
    sid = await create(ada.browser, seats=2, title="Ada's couple session")
    bobs_own = await create(bob.browser, title="Bob's session")
    alice = Client(server)
    assert (await alice.redeem(sid, await token_of(ada.browser, sid))).status == 200
    assert (await alice.wait(sid)).body == {"state": "waiting"}

    # Bob's dashboard lists his own session and not Ada's.
    assert [s["id"] for s in await dashboard(bob.browser)] == [bobs_own]

    async def bob_is_refused_everything(*decisions: str) -> None:
        before_view = await session_view(ada.browser, sid)
        before_rows = await db_rows(server, sid)
        before_audit = await audit_entries(server)
        paths = [f"/api/sessions/{sid}/seats/{seat}/{d}" for seat in (1, 2) for d in decisions]
        paths += [f"/api/sessions/{sid}/seats/1/reissue", f"/api/sessions/{sid}/seats/2/reissue"]
        paths += [f"/api/sessions/{sid}/end"]
        for path in paths:
            reply = await bob.browser.post(path)
            assert reply.status == 404, (path, reply.body)
            assert reply.body == {"error": access.NOT_FOUND}, path
        # Nothing moved: the rows, Ada's dashboard, and not one audit entry.
        assert await db_rows(server, sid) == before_rows
        assert await session_view(ada.browser, sid) == before_view
        assert await audit_entries(server) == before_audit

    await bob_is_refused_everything("admit", "deny", "remove")
    assert (await seat_view(ada.browser, sid))["state"] == "waiting"

    # The same requests work for the owner, so the 404s above were about ownership.
    assert (await ada.browser.post(f"/api/sessions/{sid}/seats/1/admit")).status == 200
    assert (await alice.status(sid)).body["state"] == "admitted"
    await bob_is_refused_everything("remove")
    assert (await alice.status(sid)).body["state"] == "admitted"

    # Someone else's session looks exactly like one that does not exist.
    missing = await bob.browser.post("/api/sessions/no-such-session/end")
    assert (missing.status, missing.body) == (404, {"error": access.NOT_FOUND})

    # The log holds no admit, end, reissue or decision on Ada's session but her own admit.
    about_ada = [e for e in await audit_entries(server) if e["object"] == f"session:{sid}"]
    bobs_id = await therapist_id(server, "bob")
    assert not [e for e in about_ada if e["actor"] == f"therapist:{bobs_id}"]
    assert [
        (e["action"], e["actor"]) for e in about_ada if e["action"].startswith(("waiting.a", "session.end"))
    ] == [("waiting.admit", f"therapist:{await therapist_id(server, 'ada')}")]

    # Ada can still end her session; Bob's is untouched by it.
    assert (await ada.browser.post(f"/api/sessions/{sid}/end")).status == 200
    assert [s["id"] for s in await dashboard(bob.browser)] == [bobs_own]


async def test_a_guest_of_one_session_cannot_reach_another(server: Server, ada: Therapist) -> None:
    first = await create(ada.browser, title="First")
    second = await create(ada.browser, title="Second")
    alice = Client(server)
    assert (await alice.redeem(first, await token_of(ada.browser, first))).status == 200
    second_before = await db_rows(server, second)

    status = await alice.status(second)
    assert (status.status, status.body) == (403, {"error": "Your invitation is for a different session."})
    waited = await alice.wait(second, "Mallory")
    assert (waited.status, waited.body) == (403, {"error": "Your invitation is for a different session."})
    assert await db_rows(server, second) == second_before
    # Nor did the refused wait move the guest's own seat.
    assert (await seat_view(ada.browser, first))["state"] == "joined"
    assert (await seat_view(ada.browser, first))["name"] == ""

    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await alice.socket(second)
    assert refused.value.status == 401

    # The same cookie works on its own session, over HTTP and WebSocket.
    assert (await alice.status(first)).body["session"] == first
    ws = await alice.socket(first)
    assert (await ws.receive_json(timeout=5)) == {"type": "state", "state": "joined"}
    await ws.close()


async def test_a_guest_cookie_is_not_a_therapist(server: Server, ada: Therapist) -> None:
    sid = await create(ada.browser)
    alice = Client(server)
    assert (await alice.redeem(sid, await token_of(ada.browser, sid))).status == 200
    assert (await alice.wait(sid)).status == 200
    before = await db_rows(server, sid)
    before_audit = await audit_entries(server)

    listed = await server.client.get("/api/sessions", headers=alice.headers())
    assert listed.status == 401
    for path in (
        "/api/sessions",
        f"/api/sessions/{sid}/seats/1/admit",
        f"/api/sessions/{sid}/seats/1/deny",
        f"/api/sessions/{sid}/seats/1/reissue",
        f"/api/sessions/{sid}/end",
    ):
        reply = await alice.post(path, {"title": "x", "starts_at": 1, "duration_minutes": 50, "seats": 1})
        assert (reply.status, reply.body) == (401, {"error": "Please sign in."}), path
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await server.client.ws_connect("/ws?role=therapist", headers=alice.headers())
    assert refused.value.status == 401

    assert await db_rows(server, sid) == before
    assert await audit_entries(server) == before_audit
    assert [s["id"] for s in await dashboard(ada.browser)] == [sid]
    # The therapist's own socket still works (the refusals were about the cookie, not the route).
    ws = await therapist_socket(ada)
    await ws.send_json({"type": "ping"})
    assert await ws.receive_json(timeout=5) == {"type": "pong"}
    await ws.close()
