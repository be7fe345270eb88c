"""The RTP relay (relay = "rtp") with real aiortc peers through an in-process server: media flows
both ways, a late joiner's keyframe request reaches the publisher, a subscriber's NACKs are
answered from the server's history, loss on the publisher's leg is recovered upstream, a
subscriber's stream stays one continuous sequence across the publisher's reconnect, and the
recorder's side path yields frames that remux into a WebM file PyAV decodes."""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from pathlib import Path
from typing import Any

from aiortc import RTCPeerConnection
from aiortc.rtp import RTCP_PSFB_APP, RtcpPsfbPacket, RtcpSrPacket, RtpPacket, is_rtcp, unpack_remb_fci

from tests.support.call_client import CallClient
from tests.support.inprocess import InProcessCall
from tests.support.media import mean_colour
from tests.support.relay_calls import close_to, collect_packets, peer, remux_and_decode
from vsession.sfu.rtp.egress import Egress
from vsession.sfu.rtp.relay import RtpRelay

RED, GREEN, BLUE = (220, 40, 40), (40, 200, 40), (40, 60, 220)
SEQ_MOD, TS_MOD = 1 << 16, 1 << 32


async def connected(client: CallClient) -> RTCPeerConnection:
    await client.wait_for(lambda: client.pc is not None and client.pc.connectionState == "connected")
    assert client.pc is not None
    return client.pc


def server_pc(call: InProcessCall, peer_id: str) -> RTCPeerConnection:
    return call.services.sfu.rooms[call.session_id].members[peer_id].peer.pc


def egresses(pc: RTCPeerConnection) -> list[Egress]:
    return [e for t in pc.getTransceivers() if (e := getattr(t.sender, "_vsession_egress", None)) is not None]


async def test_media_flows_both_ways_and_a_late_joiner_gets_a_keyframe(inprocess_call) -> None:
    call = await inprocess_call(clients=1, relay="rtp")
    assert isinstance(call.services.sfu.forwarder, RtpRelay)
    therapist = peer(call, call.therapist.agent, RED)
    client = peer(call, call.clients[0], GREEN)
    try:
        await therapist.join()
        pc = await connected(therapist)
        # aiortc's encoder makes a keyframe only when asked (gop_size 3000): the joiner sees video
        # only if its PLI, or the server's request on its behalf, reaches the publisher.
        asked: list[float] = []
        video = next(t.sender for t in pc.getTransceivers() if t.kind == "video" and t.sender.track)
        original = video._send_keyframe

        def counted() -> None:
            asked.append(time.monotonic())
            original()

        video._send_keyframe = counted  # type: ignore[method-assign]
        rembs: list[int] = []
        handle_rtcp = video._handle_rtcp_packet

        async def heard(packet: Any) -> None:
            if isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_APP:
                rembs.append(unpack_remb_fci(packet.fci)[0])
            await handle_rtcp(packet)

        video._handle_rtcp_packet = heard  # type: ignore[method-assign]
        published: dict[int, int] = {}  # the publisher's SRs: NTP time -> RTP timestamp
        send_rtcp = video._send_rtcp

        async def reports(packets: list[Any]) -> None:
            for packet in packets:
                if isinstance(packet, RtcpSrPacket):
                    published[packet.sender_info.ntp_timestamp] = packet.sender_info.rtp_timestamp
            await send_rtcp(packets)

        video._send_rtcp = reports  # type: ignore[method-assign]
        await asyncio.sleep(1.5)  # well past the publisher's first keyframe
        joined_at = time.monotonic()
        await client.join()
        await client.wait_for(
            lambda: client.frames[("t", "camera")] >= 10 and client.frames[("t", "microphone")] >= 10
        )
        await therapist.wait_for(
            lambda: therapist.frames[("s1", "camera")] >= 10 and therapist.frames[("s1", "microphone")] >= 10
        )
        assert any(t >= joined_at for t in asked), "the server asked the publisher for a keyframe"
        # The subscriber's bandwidth estimate (REMB) reaches the publisher's ingress, and the
        # publisher hears REMB from the server.
        ingress = call.services.sfu.rooms[call.session_id].members["t"].sources["camera"].ingress
        assert ingress is not None
        await client.wait_for(lambda: bool(ingress.downlink_estimates) and bool(rembs))
        # The publisher's packets took the direct path (wire.py), not aiortc's queue.
        assert ingress.queued == 0 and call.services.sfu.forwarder.forwarded.packets > 0
        assert close_to(mean_colour(client.last_video["t"]), RED)
        assert close_to(mean_colour(therapist.last_video["s1"]), GREEN)

        # The subscriber's SR carries the publisher's NTP time and the same instant in the
        # subscriber's timestamps: its audio and video keep the publisher's common clock.
        received: list[tuple[int, int]] = []
        client_pc = await connected(client)
        for transceiver in client_pc.getTransceivers():
            receiver_rtcp = transceiver.receiver._handle_rtcp_packet

            async def sr(packet: Any, original: Any = receiver_rtcp) -> None:
                if isinstance(packet, RtcpSrPacket) and packet.sender_info.ntp_timestamp:
                    received.append((packet.sender_info.ntp_timestamp, packet.sender_info.rtp_timestamp))
                await original(packet)

            transceiver.receiver._handle_rtcp_packet = sr  # type: ignore[method-assign]
        [egress] = [e for e in egresses(server_pc(call, "s1")) if e.kind == "video"]
        await client.wait_for(lambda: any(ntp in published for ntp, _ in received))
        ntp, rtp = next((ntp, rtp) for ntp, rtp in received if ntp in published)
        assert rtp == egress._rewriter.timestamp(published[ntp])
        forwarded = call.services.sfu.forwarder.forwarded
        assert forwarded.packets > 0 and forwarded.bytes > forwarded.packets
    finally:
        await therapist.close()
        await client.close()


async def test_a_subscribers_nacks_are_answered_from_the_servers_history(inprocess_call) -> None:
    call = await inprocess_call(clients=1, relay="rtp")
    publisher = peer(call, call.clients[0], GREEN)
    viewer = peer(call, call.therapist.agent, RED)
    dice = random.Random(11)
    dropped = 0
    try:
        await viewer.join()
        await publisher.join()
        await viewer.wait_for(lambda: viewer.frames[("s1", "camera")] >= 5)
        # Loss on the server-to-viewer leg, as the viewer's transport sees it (after SRTP).
        viewer_pc = await connected(viewer)
        transport = next(t.receiver.transport for t in viewer_pc.getTransceivers())
        handle_rtp = transport._handle_rtp_data

        async def lossy(data: bytes, arrival_time_ms: int) -> None:
            nonlocal dropped
            if dice.random() < 0.05:
                dropped += 1
                return
            await handle_rtp(data, arrival_time_ms)

        transport._handle_rtp_data = lossy  # type: ignore[method-assign]
        pc = server_pc(call, "t")
        before = viewer.frames[("s1", "camera")]
        await viewer.wait_for(lambda: viewer.frames[("s1", "camera")] >= before + 150, patience=40)
        assert dropped >= 10
        assert sum(e.retransmitted for e in egresses(pc)) > 0, "the server resent from its history"
        assert close_to(mean_colour(viewer.last_video["s1"]), GREEN)
    finally:
        await publisher.close()
        await viewer.close()


async def test_five_percent_loss_on_the_publisher_leg_still_decodes(inprocess_call) -> None:
    call = await inprocess_call(clients=1, relay="rtp")
    publisher = peer(call, call.therapist.agent, RED)
    viewer = peer(call, call.clients[0], GREEN)
    dice = random.Random(7)
    dropped = 0
    try:
        await publisher.join()
        pc = await connected(publisher)
        transport = next(t.sender.transport for t in pc.getTransceivers() if t.sender.transport)
        send_rtp = transport._send_rtp

        async def lossy(data: bytes) -> None:
            nonlocal dropped
            if not is_rtcp(data) and dice.random() < 0.05:
                dropped += 1
                return
            await send_rtp(data)

        transport._send_rtp = lossy  # type: ignore[method-assign]
        video = next(t.sender for t in pc.getTransceivers() if t.kind == "video" and t.sender.track)
        retransmitted: list[int] = []
        retransmit = video._retransmit

        async def counted(seq: int) -> None:
            retransmitted.append(seq)
            await retransmit(seq)

        video._retransmit = counted  # type: ignore[method-assign]
        await viewer.join()
        await viewer.wait_for(lambda: viewer.frames[("t", "camera")] >= 150, patience=40)
        assert dropped >= 10
        assert retransmitted, "the server's ingress asked the publisher to resend (NACK)"
        assert close_to(mean_colour(viewer.last_video["t"]), RED)
    finally:
        await publisher.close()
        await viewer.close()


class Captured:
    """Every RTP packet a client's transport receives, parsed, with its arrival time."""

    def __init__(self, pc: RTCPeerConnection) -> None:
        transport = next(t.receiver.transport for t in pc.getTransceivers())
        self.packets: list[tuple[float, RtpPacket]] = []
        handle = transport._handle_rtp_data

        async def capture(data: bytes, arrival_time_ms: int) -> None:
            self.packets.append((time.monotonic(), RtpPacket.parse(data)))
            await handle(data, arrival_time_ms)

        transport._handle_rtp_data = capture  # type: ignore[method-assign]

    def stream(self, ssrc: int) -> list[tuple[float, RtpPacket]]:
        return [(at, p) for at, p in self.packets if p.ssrc == ssrc]


async def test_a_subscribers_stream_is_continuous_across_the_publishers_reconnect(inprocess_call) -> None:
    call = await inprocess_call(clients=1, relay="rtp")
    viewer = peer(call, call.therapist.agent, RED)
    first = peer(call, call.clients[0], GREEN)
    second = peer(call, call.clients[0], BLUE)
    try:
        await viewer.join()
        await first.join()
        await viewer.wait_for(lambda: viewer.frames[("s1", "camera")] >= 10)
        captured = Captured(await connected(viewer))
        await viewer.wait_for(lambda: viewer.frames[("s1", "camera")] >= 40)
        [video] = [e for e in egresses(server_pc(call, "t")) if e.kind == "video"]
        switched = len(captured.stream(video.ssrc))
        assert switched > 20
        await first.close()  # gone without a word, then back: a reload
        closed_at = time.monotonic()
        await second.join()
        await viewer.wait_for(
            lambda: (
                viewer.latest.get(("s1", "camera")) is not None
                and close_to(mean_colour(viewer.latest[("s1", "camera")]), BLUE)
                and len(captured.stream(video.ssrc)) > switched + 100
            ),
            patience=30,
        )
        assert [e for e in egresses(server_pc(call, "t")) if e.kind == "video"] == [video], "the same m-line"
        stream = captured.stream(video.ssrc)
        steps = [
            (b[1].sequence_number - a[1].sequence_number) % SEQ_MOD for a, b in itertools.pairwise(stream)
        ]
        # Loopback keeps order; a lost packet would show as a step of 2 or 3, never a jump.
        assert all(1 <= step <= 3 for step in steps), sorted(set(steps))
        # The switch: the last packet of the first connection, the first of the second.
        switch = next(i for i, (at, _) in enumerate(stream) if at > closed_at)
        (left_at, before), (came_at, after) = stream[switch - 1], stream[switch]
        assert after.sequence_number == (before.sequence_number + 1) % SEQ_MOD
        gap = came_at - left_at
        advance = ((after.timestamp - before.timestamp) % TS_MOD) / 90000
        # As far on as the wall clock moved (a few frames of slack: VP8 packets of one frame share a stamp).
        assert 0 < advance < gap + 0.2, f"the timestamp moved on by the pause ({advance:.2f} s, {gap:.2f} s)"
    finally:
        await viewer.close()
        await first.close()
        await second.close()


async def test_the_recorders_side_path_remuxes_to_webm(inprocess_call, tmp_path: Path) -> None:
    call = await inprocess_call(clients=1, relay="rtp")
    therapist = peer(call, call.therapist.agent, RED)
    client = peer(call, call.clients[0], GREEN)
    try:
        await therapist.join()
        await client.join()
        await therapist.wait_for(lambda: therapist.frames[("s1", "camera")] >= 5)
        relay = call.services.sfu.forwarder
        assert isinstance(relay, RtpRelay)
        sources = call.services.sfu.rooms[call.session_id].members["s1"].sources
        ingress = sources["camera"].ingress
        assert ingress is not None and ingress.tap is None, "no depacketizing while nobody records"
        subscriptions = {name: relay.subscribe_packets(sources[name]) for name in ("camera", "microphone")}
        packets = await collect_packets(subscriptions)
        assert packets["camera"][0].is_keyframe, "the side path starts on a keyframe"
        await therapist.wait_for(lambda: ingress.tap is None)  # gone with its last subscription

        frames, samples = remux_and_decode(packets, tmp_path / "s1.webm")
        assert len(frames) == 60
        assert len(samples) == 100
        assert close_to(mean_colour(frames[-1]), GREEN)
    finally:
        await therapist.close()
        await client.close()
