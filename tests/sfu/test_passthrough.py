"""The pass-through relay with real aiortc peers through an in-process server: keyframe requests
reach the publisher, lost packets are recovered per hop, and the encoded-packet subscriber
interface yields packets that remux into a WebM file PyAV decodes frame for frame."""

from __future__ import annotations

import asyncio
import random
import time
from fractions import Fraction
from pathlib import Path

import av

from tests.support.call_client import CallClient
from tests.support.media import mean_colour
from tests.support.relay_calls import close_to, collect_packets, peer, remux_and_decode
from vsession.sfu.passthrough import MAX_BACKLOG, PassthroughRelay, Subscription, is_keyframe

RED, GREEN = (220, 40, 40), (40, 200, 40)


def count_keyframe_requests(client: CallClient) -> list[float]:
    """Record when the server asks this publisher for a keyframe (its sender's PLI/FIR handler)."""
    asked: list[float] = []
    assert client.pc is not None
    for transceiver in client.pc.getTransceivers():
        sender = transceiver.sender
        if sender.track is not None and sender.track.kind == "video":
            original = sender._send_keyframe

            def wrapped(original=original) -> None:
                asked.append(time.monotonic())
                original()

            sender._send_keyframe = wrapped
    return asked


async def test_a_late_joiner_gets_video_through_a_forwarded_keyframe_request(inprocess_call) -> None:
    call = await inprocess_call(clients=1)
    therapist = peer(call, call.therapist.agent, RED)
    client = peer(call, call.clients[0], GREEN)
    try:
        await therapist.join()
        # The publisher's encoder makes a keyframe only when asked (aiortc: gop_size 3000, 100 s).
        await therapist.wait_for(
            lambda: therapist.pc is not None and therapist.pc.connectionState == "connected"
        )
        asked = count_keyframe_requests(therapist)
        await asyncio.sleep(1.5)  # the publisher is well past its first keyframe
        joined_at = time.monotonic()
        await client.join()
        await client.wait_for(lambda: client.frames[("t", "camera")] >= 10)
        first_video = time.monotonic() - joined_at
        assert any(t >= joined_at for t in asked), "the server asked the publisher for a keyframe"
        seen = mean_colour(client.last_video["t"])
        assert close_to(seen, RED), f"the late joiner sees {seen}, not the therapist's {RED}"
        print(f"late joiner: first 10 frames {first_video:.2f} s after joining")
    finally:
        await therapist.close()
        await client.close()


async def test_five_percent_loss_on_the_publisher_leg_still_decodes(inprocess_call) -> None:
    call = await inprocess_call(clients=1)
    publisher = peer(call, call.therapist.agent, RED)
    viewer = peer(call, call.clients[0], GREEN)
    dice = random.Random(7)
    dropped = 0
    try:
        await publisher.join()
        await publisher.wait_for(
            lambda: publisher.pc is not None and publisher.pc.connectionState == "connected"
        )
        transport = next(t.sender.transport for t in publisher.pc.getTransceivers() if t.sender.transport)
        send_rtp = transport._send_rtp

        async def lossy(data: bytes) -> None:
            nonlocal dropped
            is_rtcp = 192 <= data[1] <= 223
            if not is_rtcp and dice.random() < 0.05:
                dropped += 1
                return
            await send_rtp(data)

        transport._send_rtp = lossy
        retransmitted: list[int] = []
        video_sender = next(
            t.sender for t in publisher.pc.getTransceivers() if t.kind == "video" and t.sender.track
        )
        retransmit = video_sender._retransmit

        async def counted(seq: int) -> None:
            retransmitted.append(seq)
            await retransmit(seq)

        video_sender._retransmit = counted
        await viewer.join()
        await viewer.wait_for(lambda: viewer.frames[("t", "camera")] >= 150, patience=40)
        assert dropped >= 10
        assert retransmitted, "the server's receiver asked the publisher to resend (NACK)"
        red = mean_colour(viewer.last_video["t"])
        assert close_to(red, RED), red
    finally:
        await publisher.close()
        await viewer.close()


async def test_packet_subscriber_remuxes_to_webm(inprocess_call, tmp_path: Path) -> None:
    call = await inprocess_call(clients=1)
    therapist = peer(call, call.therapist.agent, RED)
    client = peer(call, call.clients[0], GREEN)
    try:
        await therapist.join()
        await client.join()
        await therapist.wait_for(lambda: therapist.frames[("s1", "camera")] >= 5)
        relay = call.services.sfu.forwarder
        assert isinstance(relay, PassthroughRelay)
        sources = call.services.sfu.rooms[call.session_id].members["s1"].sources
        subscriptions = {name: relay.subscribe_packets(sources[name]) for name in ("camera", "microphone")}
        packets = await collect_packets(subscriptions)
        assert packets["camera"][0].is_keyframe, "a subscriber starts on a keyframe"

        frames, samples = remux_and_decode(packets, tmp_path / "s1.webm")
        assert len(frames) == 60
        assert len(samples) == 100
        assert close_to(mean_colour(frames[-1]), GREEN)
    finally:
        await therapist.close()
        await client.close()


class _Keyframes:
    """Counts keyframe requests (a stand-in for the publisher's receiver, which needs a network)."""

    def __init__(self) -> None:
        self.requests = 0

    def request(self) -> bool:
        self.requests += 1
        return True


class _Source:
    def __init__(self) -> None:
        self.keyframes = _Keyframes()
        self.subscriptions: set[Subscription] = set()


def video_packet(key: bool, n: int) -> av.Packet:
    packet = av.Packet(bytes([0x00 if key else 0x01]) + bytes(20))
    packet.pts, packet.time_base = n * 3000, Fraction(1, 90000)
    packet.is_keyframe = is_keyframe("video", bytes(packet))
    return packet


async def test_a_subscriber_starts_on_a_keyframe_and_its_backlog_is_bounded() -> None:
    source = _Source()
    subscription = Subscription(source)  # type: ignore[arg-type]
    subscription.offer(video_packet(False, 0))
    assert subscription.dropped == 1
    subscription.offer(video_packet(True, 1))
    for n in range(2, MAX_BACKLOG + 1):
        subscription.offer(video_packet(False, n))
    assert (await subscription.get()).is_keyframe
    # A subscriber that stops reading: the backlog never passes the bound, and it restarts on a keyframe.
    for n in range(MAX_BACKLOG * 3):
        subscription.offer(video_packet(False, 100 + n))
    assert len(subscription._backlog) <= MAX_BACKLOG
    assert source.keyframes.requests >= 1
    subscription.offer(video_packet(True, 999))
    while (packet := await subscription.get()) is not None and not packet.is_keyframe:
        pass
    assert packet is not None and packet.pts == 999 * 3000
