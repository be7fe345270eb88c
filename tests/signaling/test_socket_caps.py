"""WebSockets are capped: a therapist's account keeps its newest pages open (the oldest closes, saying
why) and a client's seat has one page, the newest."""

from __future__ import annotations

import pytest

from tests.support.app_client import Server, Therapist, enrol, open_server
from tests.support.clock import FakeClock
from tests.support.rooms_api import Client, create, receive, therapist_socket, token_of
from tests.support.signin_sockets import closed
from vsession.config import Settings
from vsession.rooms import registry


@pytest.fixture
async def server(aiohttp_client: object, settings: Settings, clock: FakeClock) -> Server:
    return await open_server(aiohttp_client, settings, clock)


@pytest.fixture
async def ada(server: Server) -> Therapist:
    return await enrol(server)


async def test_a_therapist_keeps_the_newest_pages(server: Server, ada: Therapist) -> None:
    sockets = [await therapist_socket(ada) for _ in range(registry.THERAPIST_SOCKETS)]
    newest = await therapist_socket(ada)
    code, reason, _ = await closed(sockets[0])
    assert (code, reason) == (registry.REPLACED, registry.TOO_MANY_PAGES)
    for ws in [*sockets[1:], newest]:
        await ws.send_json({"type": "ping"})
        assert await receive(ws) == {"type": "pong"}
        await ws.close()


async def test_a_client_seat_has_one_page(server: Server, ada: Therapist) -> None:
    sid = await create(ada.browser)
    alice = Client(server)
    assert (await alice.redeem(sid, await token_of(ada.browser, sid))).status == 200
    first = await alice.socket(sid)
    assert await receive(first) == {"type": "state", "state": "joined"}
    second = await alice.socket(sid)
    assert await receive(second) == {"type": "state", "state": "joined"}
    code, reason, _ = await closed(first)
    assert (code, reason) == (registry.REPLACED, registry.SEAT_TAKEN)
    await second.send_json({"type": "ping"})
    assert await receive(second) == {"type": "pong"}
    await second.close()
