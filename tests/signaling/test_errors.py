"""An unexpected error inside a WebSocket handler (a bug, or a part that breaks) leaves no ghost
member and no half-made peer connection: the page gets a plain error, the log the traceback, and
the call goes on; the same page can then join."""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import pytest
from aiortc import AudioStreamTrack

from tests.support.call_client import CallClient
from tests.support.media import ColourTrack
from vsession.sfu.peer import Peer

RED, GREEN = (220, 40, 40), (40, 200, 40)


class BrokenPeer(Peer):
    """A connection that fails while making its first offer."""

    made: ClassVar[list[BrokenPeer]] = []

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        BrokenPeer.made.append(self)

    async def negotiate(self) -> None:
        raise RuntimeError("injected: the offer could not be made")


async def test_a_join_that_breaks_half_way_leaves_no_ghost(
    inprocess_call: Any, caplog: pytest.LogCaptureFixture
) -> None:
    call = await inprocess_call(1)
    services = call.services
    therapist = CallClient(
        *call.ws(call.therapist.agent), {"camera": ColourTrack(RED), "microphone": AudioStreamTrack()}
    )
    client = CallClient(
        *call.ws(call.clients[0]), {"camera": ColourTrack(GREEN), "microphone": AudioStreamTrack()}
    )
    try:
        await therapist.join()
        await therapist.wait_for(lambda: {p["id"] for p in therapist.participants} == {"t"})
        room = services.sfu.rooms[call.session_id]
        room._make_peer = BrokenPeer
        with caplog.at_level(logging.ERROR, logger="vsession"):
            await client.join()
            await client.wait_for(lambda: bool(client.errors))
        assert client.errors == ["Something went wrong on the server. Please try again, or rejoin the call."]
        # No ghost: not in the room, not in the consent machine, not in anyone's list.
        assert set(room.members) == {"t"}
        assert services.consent(call.session_id).present == {"t"}
        assert {p["id"] for p in therapist.participants} == {"t"}
        # No half-made peer: the connection it began is closed.
        [broken] = BrokenPeer.made
        assert broken.pc.connectionState == "closed"
        # The traceback is in the log, the page saw none of it.
        [record] = [r for r in caplog.records if r.getMessage() == "websocket message failed"]
        assert record.exc_info is not None and "injected" in str(record.exc_info[1])
        assert not any("Traceback" in e or "injected" in e for e in client.errors)

        # The part mended, the same page joins, and media flows both ways.
        room._make_peer = Peer
        await client.send({"type": "join"})
        await client.wait_for(lambda: client.frames[("t", "camera")] > 10, patience=30)
        await therapist.wait_for(lambda: therapist.frames[("s1", "camera")] > 10, patience=30)
        assert {p["id"] for p in therapist.participants} == {"t", "s1"}
    finally:
        BrokenPeer.made.clear()
        await client.close()
        await therapist.close()
