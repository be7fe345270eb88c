"""One published stream as it arrives: aiortc's RTCRtpReceiver, minus its jitter buffer, decoder
and depacketizer. The DTLS transport has already unprotected and parsed each packet; this keeps
what the publisher's side of RTCP needs (statistics for receiver reports, NACKs for lost packets,
the REMB bandwidth estimate) and hands the packet to every subscriber's Egress.

Hooks, per receiver instance, guarded by tests/sfu/test_aiortc_internals.py: `_handle_rtp_packet`
is replaced and `_handle_rtcp_packet` wrapped; the receiver's statistics, NACK generator, bitrate
estimator, codecs and RTX map are read through their name-mangled attributes."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiortc import MediaStreamTrack, RTCRtpReceiver, clock
from aiortc.codecs import is_rtx
from aiortc.mediastreams import MediaStreamError
from aiortc.rtcrtpreceiver import StreamStatistics
from aiortc.rtp import (
    RTCP_PSFB_APP,
    RTCP_RTPFB_NACK,
    AnyRtcpPacket,
    RtcpPsfbPacket,
    RtcpRtpfbPacket,
    RtcpSrPacket,
    RtpPacket,
    pack_remb_fci,
    unwrap_rtx,
)

from vsession.sfu.keyframes import KeyframeRequester
from vsession.sfu.passthrough import Forwarded, Subscription
from vsession.sfu.rtp.egress import Egress
from vsession.sfu.rtp.rewrite import vp8_keyframe_start
from vsession.sfu.rtp.tap import FrameTap
from vsession.sfu.rtp.wire import send_now

log = logging.getLogger("vsession.sfu")

ESTIMATE_FRESH = 5.0  # seconds a subscriber's REMB counts for
REMB_INTERVAL = 0.25  # at most this often a lowered estimate goes to the publisher at once


class Ingress:
    def __init__(self, receiver: RTCRtpReceiver, forwarded: Forwarded) -> None:
        self.receiver = receiver
        self._forwarded = forwarded
        self.kind: str = receiver._RTCRtpReceiver__kind  # type: ignore[attr-defined]
        self.keyframes = KeyframeRequester(receiver)
        self.egresses: set[Egress] = set()
        self.tap: FrameTap | None = None
        r: Any = receiver
        # The receiver's own objects, filled in or used by its other methods: read once.
        self._codecs = r._RTCRtpReceiver__codecs
        self._rtx_ssrc = r._RTCRtpReceiver__rtx_ssrc
        self._active = r._RTCRtpReceiver__active_ssrc
        self._streams: dict[int, StreamStatistics] = r._RTCRtpReceiver__remote_streams
        self._nack = r._RTCRtpReceiver__nack_generator
        self._estimator = r._RTCRtpReceiver__remote_bitrate_estimator
        self.downlink_estimates: dict[Egress, tuple[int, float]] = {}  # subscribers' REMB, and when
        self._uplink: int | None = None  # the publisher leg's own estimate
        self._sent_remb: tuple[int, float] = (0, 0.0)
        self.failures = 0  # packets whose forwarding raised (logged once)
        self.queued = 0  # packets that came through aiortc's queue, not the direct path
        handle_rtcp: Callable[[AnyRtcpPacket], Awaitable[None]] = r._handle_rtcp_packet

        async def rtcp(packet: AnyRtcpPacket) -> None:
            if isinstance(packet, RtcpSrPacket):
                info = packet.sender_info
                for egress in list(self.egresses):
                    egress.sender_report(info.ntp_timestamp, info.rtp_timestamp)
            await handle_rtcp(packet)

        r._handle_rtcp_packet = rtcp
        r._handle_rtp_packet = self.handle

    async def handle(self, packet: RtpPacket, arrival_time_ms: int) -> None:
        """What the DTLS transport calls (as RTCRtpReceiver._handle_rtp_packet) when the direct
        receive path did not take the packet."""
        self.queued += 1
        self.handle_now(packet, arrival_time_ms)

    def handle_now(self, packet: RtpPacket, arrival_time_ms: int) -> None:
        """One packet from the publisher, unprotected and parsed: forwarded before anything else."""
        receiver = self.receiver
        if not receiver._enabled:  # type: ignore[attr-defined]
            return
        ssrc = packet.ssrc
        self._active[ssrc] = clock.current_datetime()
        codec = self._codecs.get(packet.payload_type)
        if codec is None:
            return
        stats = self._streams.get(ssrc)
        if stats is None:
            stats = self._streams[ssrc] = StreamStatistics(codec.clockRate)
        stats.add(packet)
        send_time = packet.extensions.abs_send_time
        size = len(packet.payload) + packet.padding_size
        if is_rtx(codec):
            original_ssrc = self._rtx_ssrc.get(ssrc)
            apt = codec.parameters.get("apt")
            if (
                original_ssrc is None
                or len(packet.payload) < 2
                or not isinstance(apt, int)
                or apt not in self._codecs
            ):
                self._estimate(send_time, arrival_time_ms, size, ssrc)  # RTX padding: bandwidth probes
                return
            packet = unwrap_rtx(packet, payload_type=apt, ssrc=original_ssrc)
            codec = self._codecs[apt]

        name = codec.name.lower()
        keyframe_start = name == "vp8" and vp8_keyframe_start(packet.payload)
        forwarded = self._forwarded
        for egress in tuple(self.egresses):
            try:
                data = egress.forward(packet, name, keyframe_start)
                if data is not None and egress.transmit(data):
                    forwarded.packets += 1
                    forwarded.bytes += len(packet.payload)
            except Exception:
                self._failed()

        # The publisher's side of RTCP, once the subscribers have their packet.
        nack = self._nack
        if nack is not None and nack.add(packet):
            self._send_rtcp(
                lambda rtcp_ssrc: RtcpRtpfbPacket(
                    fmt=RTCP_RTPFB_NACK, ssrc=rtcp_ssrc, media_ssrc=packet.ssrc, lost=sorted(nack.missing)
                )
            )
        self._estimate(send_time, arrival_time_ms, size, ssrc)
        tap = self.tap
        if tap is not None:
            if tap.subscriptions:
                try:
                    tap.add(packet, codec, keyframe_start)
                except Exception:
                    self._failed()
            else:
                self.tap = None  # the segment ended: no more depacketizing

    def _estimate(self, send_time: int | None, arrival_time_ms: int, size: int, ssrc: int) -> None:
        estimator = self._estimator
        if estimator is None or send_time is None:
            return
        remb = estimator.add(
            abs_send_time=send_time, arrival_time_ms=arrival_time_ms, payload_size=size, ssrc=ssrc
        )
        if remb is not None:
            self._uplink = remb[0]
            self._send_remb(remb[1])

    def _failed(self) -> None:
        # This runs inside the publisher's receive path, which an exception would end: a bad
        # packet must cost one subscriber one packet, not the publisher their whole connection.
        self.failures += 1
        if self.failures == 1:
            log.exception("RTP relay: a packet could not be forwarded")

    def subscribe_frames(self) -> Subscription:
        """Encoded frames of this stream (for the recorder), from a side path that exists only
        while someone subscribes."""
        if self.tap is None:
            self.tap = FrameTap(self.kind, self.keyframes)
        return self.tap.subscribe()

    def downlink_estimate(self, egress: Egress, bitrate: int) -> None:
        """A subscriber's REMB: the publisher is told the lowest of these and its own leg's, so
        it never sends more than its slowest subscriber can take."""
        now = time.monotonic()
        self.downlink_estimates[egress] = (bitrate, now)
        sent, at = self._sent_remb
        if bitrate < sent and now - at >= REMB_INTERVAL:
            self._send_remb(None)

    def _send_remb(self, ssrcs: list[int] | None) -> None:
        now = time.monotonic()
        cap = [b for b, at in self.downlink_estimates.values() if now - at < ESTIMATE_FRESH]
        candidates = cap + ([self._uplink] if self._uplink is not None else [])
        if not candidates:
            return
        if ssrcs is None:
            ssrcs = [s.source for s in self.receiver.getSynchronizationSources()]
        bitrate = min(candidates)
        self._sent_remb = (bitrate, now)
        self._send_rtcp(
            lambda rtcp_ssrc: RtcpPsfbPacket(
                fmt=RTCP_PSFB_APP, ssrc=rtcp_ssrc, media_ssrc=0, fci=pack_remb_fci(bitrate, ssrcs)
            )
        )

    def _send_rtcp(self, make: Callable[[int], AnyRtcpPacket]) -> None:
        """To the publisher, from the receiver's RTCP SSRC (none until negotiated: nothing sent)."""
        rtcp_ssrc = self.receiver._RTCRtpReceiver__rtcp_ssrc  # type: ignore[attr-defined]
        if rtcp_ssrc is not None:
            send_now(self.receiver.transport, bytes(make(rtcp_ssrc)))

    def close(self) -> None:
        """The source is gone: subscribers stop getting it, the recorder's side path ends."""
        for egress in list(self.egresses):
            if egress.downlink is not None:
                egress.downlink.end()
        self.egresses.clear()
        self.downlink_estimates.clear()
        if self.tap is not None:
            self.tap.end()
            self.tap = None


class Downlink(MediaStreamTrack):
    """What subscribe() hands the room for one subscriber: no media of its own (aiortc's sender
    never gets a frame from it). The m-line's SenderFeed reads it once the page has answered the
    offer naming it: from then on its Egress carries this source; once stopped, nothing."""

    def __init__(self, ingress: Ingress) -> None:
        super().__init__()
        self.kind = ingress.kind
        self.ingress = ingress
        self.egress: Egress | None = None  # set by prepare_sender
        self._ended = asyncio.Event()

    async def recv(self) -> Any:
        if self.readyState == "live" and self.egress is not None and not self._ended.is_set():
            self.egress.bind(self)
        await self._ended.wait()
        raise MediaStreamError

    def end(self) -> None:
        self._ended.set()
        egress = self.egress
        if egress is not None and egress.downlink is self:
            egress.bind(None)

    def stop(self) -> None:
        self.end()
        super().stop()
