"""What the relay tests (tests/sfu/test_passthrough.py, test_rtp_relay.py) share: coloured peers of an
in-process call, and the recorder's view of a relay (packet subscriptions, remuxed into WebM)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import av
from aiortc import AudioStreamTrack

from tests.support.call_client import CallClient
from tests.support.inprocess import InProcessCall
from tests.support.media import ColourTrack
from vsession.sfu.passthrough import Subscription

WANTED = {"camera": 60, "microphone": 100}  # about two seconds of each


def close_to(seen: tuple[int, int, int], expected: tuple[int, int, int]) -> bool:
    """Within VP8's colour error of the sender's known colour."""
    return all(abs(a - b) < 40 for a, b in zip(seen, expected, strict=True))


def peer(call: InProcessCall, who: Any, colour: tuple[int, int, int]) -> CallClient:
    url, headers = call.ws(who)
    return CallClient(url, headers, {"camera": ColourTrack(colour), "microphone": AudioStreamTrack()})


async def collect_packets(subscriptions: dict[str, Subscription]) -> dict[str, list[av.Packet]]:
    """WANTED packets of each source, then the subscriptions are closed."""
    packets: dict[str, list[av.Packet]] = {name: [] for name in subscriptions}

    async def collect(name: str, subscription: Subscription) -> None:
        while len(packets[name]) < WANTED[name]:
            packet = await subscription.get()
            assert packet is not None
            packets[name].append(packet)

    await asyncio.wait_for(asyncio.gather(*(collect(n, s) for n, s in subscriptions.items())), timeout=30)
    for subscription in subscriptions.values():
        subscription.close()
    return packets


def remux_and_decode(packets: dict[str, list[av.Packet]], path: Path) -> tuple[list[Any], list[Any]]:
    """Mux the camera's and microphone's packets into a WebM file as the recorder does, then decode
    it: (video frames, audio frames)."""
    with av.open(str(path), "w", format="webm") as out:
        video = out.add_stream("libvpx", rate=30)
        video.width, video.height = 320, 240
        audio = out.add_stream("libopus", rate=48000)
        audio.layout = "stereo"
        first = {name: batch[0].pts for name, batch in packets.items()}
        for name, stream in (("camera", video), ("microphone", audio)):
            for packet in packets[name]:
                packet.pts = packet.dts = packet.pts - first[name]
                packet.stream = stream
                out.mux(packet)
    with av.open(str(path)) as container:
        assert [s.type for s in container.streams] == ["video", "audio"]
        frames = list(container.decode(video=0))
    with av.open(str(path)) as container:
        samples = list(container.decode(audio=0))
    return frames, samples
