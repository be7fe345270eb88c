"""Live push over /ws: the therapist hears of waiting clients, a client hears it was admitted, denied
or that the session ended. Cross-site sockets are refused; bad messages get an error, not a hang-up."""

from __future__ import annotations

import aiohttp
import pytest

from tests.support.app_client import EVIL_ORIGIN, Server, Therapist
from tests.support.rooms_api import Client, create, receive, therapist_socket, token_of

CHANGED = {"type": "sessions_changed"}


async def ping(ws: aiohttp.ClientWebSocketResponse) -> None:
    """A round trip. Messages on one socket arrive in order, so a pong that comes first proves
    nothing was pushed before it."""
    await ws.send_json({"type": "ping"})
    assert await receive(ws) == {"type": "pong"}


async def joined(server: Server, therapist: Therapist, sid: str, seat: int = 1) -> Client:
    client = Client(server)
    assert (await client.redeem(sid, await token_of(therapist.browser, sid, seat))).status == 200
    return client


async def test_the_therapist_hears_a_client_waiting(server: Server, ada: Therapist, bob: Therapist) -> None:
    sid = await create(ada.browser)
    alice = await joined(server, ada, sid)
    ada_ws, bob_ws = await therapist_socket(ada), await therapist_socket(bob)
    await ping(ada_ws)  # redeeming a link pushed nothing

    assert (await alice.wait(sid)).status == 200
    assert await receive(ada_ws) == CHANGED
    await ping(ada_ws)
    # Another therapist hears nothing of Ada's session.
    await ping(bob_ws)

    # A client's socket coming and going is news for the dashboard ("online") too.
    alice_ws = await alice.socket(sid)
    assert await receive(alice_ws) == {"type": "state", "state": "waiting"}
    assert await receive(ada_ws) == CHANGED
    await alice_ws.close()
    assert await receive(ada_ws) == CHANGED
    await ping(bob_ws)
    await ada_ws.close()
    await bob_ws.close()


async def test_the_client_hears_admitted_then_ended(server: Server, ada: Therapist) -> None:
    sid = await create(ada.browser)
    alice = await joined(server, ada, sid)
    assert (await alice.wait(sid)).status == 200
    ws = await alice.socket(sid)
    assert await receive(ws) == {"type": "state", "state": "waiting"}

    assert (await ada.browser.post(f"/api/sessions/{sid}/seats/1/admit")).status == 200
    assert await receive(ws) == {"type": "state", "state": "admitted"}
    await ping(ws)

    assert (await ada.browser.post(f"/api/sessions/{sid}/end")).status == 200
    assert await receive(ws) == {"type": "state", "state": "ended"}
    closing = await ws.receive(timeout=5)
    assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED), closing
    assert ws.closed
    # And it cannot reconnect.
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await alice.socket(sid)
    assert refused.value.status == 401


async def test_a_denied_client_is_disconnected_at_once(server: Server, ada: Therapist) -> None:
    sid = await create(ada.browser)
    alice = await joined(server, ada, sid)
    assert (await alice.wait(sid)).status == 200
    ws = await alice.socket(sid)
    assert await receive(ws) == {"type": "state", "state": "waiting"}

    assert (await ada.browser.post(f"/api/sessions/{sid}/seats/1/deny")).status == 200
    assert await receive(ws) == {"type": "state", "state": "denied"}
    closing = await ws.receive(timeout=5)
    assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED), closing


async def test_cross_site_and_anonymous_sockets_are_refused(server: Server, ada: Therapist) -> None:
    sid = await create(ada.browser)
    alice = await joined(server, ada, sid)
    therapist_cookie = f"__Host-vsession={ada.browser.cookie}"
    for query, cookie in (("role=therapist", therapist_cookie), (f"role=guest&session={sid}", None)):
        headers = alice.headers(origin=EVIL_ORIGIN)
        if cookie:
            headers["Cookie"] = cookie
        for origin in (EVIL_ORIGIN, None, "null"):
            if origin is None:
                headers.pop("Origin")
            else:
                headers["Origin"] = origin
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await server.client.ws_connect(f"/ws?{query}", headers=headers)
            assert refused.value.status == 403, (query, origin)

    # Our own origin but no cookie, or no role: refused too.
    for query, status in (("role=therapist", 401), (f"role=guest&session={sid}", 401), ("", 400)):
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await server.client.ws_connect(f"/ws?{query}", headers={"Origin": server.origin})
        assert refused.value.status == status, query


@pytest.mark.parametrize("role", ["therapist", "guest"])
async def test_malformed_messages_get_an_error_and_the_socket_stays(
    server: Server, ada: Therapist, role: str
) -> None:
    if role == "therapist":
        ws = await therapist_socket(ada)
    else:
        sid = await create(ada.browser)
        ws = await (await joined(server, ada, sid)).socket(sid)
        assert await receive(ws) == {"type": "state", "state": "joined"}

    for bad in ("{not json", "[1, 2]", '"ping"', "42", '{"kind": "ping"}', '{"type": 5}', '{"type": "x"}'):
        await ws.send_str(bad)
        reply = await receive(ws)
        assert reply["type"] == "error", bad
        assert isinstance(reply["error"], str) and reply["error"], bad
        await ping(ws)
    await ws.send_bytes(b"\x00\x01")
    assert (await receive(ws))["type"] == "error"
    await ping(ws)
    assert not ws.closed
    await ws.close()
