"""Three real aiortc peers through a live server: each receives the other two's video and audio,
and a peer that leaves is removed from the others."""

from __future__ import annotations

import asyncio

from aiortc import AudioStreamTrack

from tests.support.call_client import CallClient
from tests.support.call_server import prepare_call
from tests.support.media import ColourTrack, mean_colour

COLOURS = {"t": (220, 40, 40), "s1": (40, 200, 40), "s2": (40, 60, 220)}


def close_to(a: tuple[int, int, int], b: tuple[int, int, int]) -> bool:
    return all(abs(x - y) < 40 for x, y in zip(a, b, strict=True))


async def test_three_peers_receive_each_other_and_a_leaver_is_removed(call_server) -> None:
    call = await prepare_call(call_server, clients=2)
    endpoints = {"t": call.therapist_ws(), "s1": call.client_ws(0), "s2": call.client_ws(1)}
    peers = {
        pid: CallClient(url, headers, {"camera": ColourTrack(COLOURS[pid]), "microphone": AudioStreamTrack()})
        for pid, (url, headers) in endpoints.items()
    }
    try:
        for peer in peers.values():
            await peer.join()
        for pid, peer in peers.items():
            others = [o for o in peers if o != pid]
            await peer.wait_for(
                lambda peer=peer, others=others: all(
                    peer.frames[(o, "camera")] >= 30 and peer.frames[(o, "microphone")] >= 50 for o in others
                ),
                patience=45,
            )
            # Whose video arrived, by its colour.
            for other in others:
                assert close_to(mean_colour(peer.last_video[other]), COLOURS[other]), (pid, other)
            assert {p["id"] for p in peer.participants} == set(peers)
            assert peer.errors == []

        await peers["s2"].close()
        for pid in ("t", "s1"):
            await peers[pid].wait_for(
                lambda pid=pid: {p["id"] for p in peers[pid].participants} == {"t", "s1"}
            )
        # The leaver's m-lines go inactive at the others: no more of its frames arrive.
        counted = {pid: peers[pid].frames[("s2", "camera")] for pid in ("t", "s1")}
        await asyncio.sleep(1.0)
        stalled = {pid: peers[pid].frames[("s2", "camera")] for pid in ("t", "s1")}
        assert stalled == counted
        # And the two who stayed still see each other.
        before = peers["t"].frames[("s1", "camera")]
        await peers["t"].wait_for(lambda: peers["t"].frames[("s1", "camera")] > before + 15)
    finally:
        for peer in peers.values():
            await peer.close()
