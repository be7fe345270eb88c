"""The recorder's side path: encoded frames reassembled from a source's RTP packets, only while
someone (a segment being written) subscribes. Forwarding never waits for it: the tap sees each
packet after the subscribers have been sent theirs."""

from __future__ import annotations

import fractions

from aiortc.codecs import depayload
from aiortc.jitterbuffer import JitterBuffer
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtcrtpreceiver import TimestampMapper
from aiortc.rtp import RtpPacket
from av import Packet

from vsession.sfu.keyframes import KeyframeRequester
from vsession.sfu.passthrough import Subscription, is_keyframe


class FrameTap:
    """Depacketizes one source into av.Packet frames for its subscriptions (passthrough's, so the
    recorder sees exactly what it saw before: keyframe first, bounded backlog, None at the end)."""

    def __init__(self, kind: str, keyframes: KeyframeRequester) -> None:
        self.kind = kind
        self.keyframes = keyframes
        self.subscriptions: set[Subscription] = set()
        # aiortc receiver's own sizes: the recording may lag by a few frames, forwarding does not.
        if kind == "audio":
            self._buffer = JitterBuffer(capacity=16, prefetch=4)
        else:
            self._buffer = JitterBuffer(capacity=512, is_video=True)
        self._timestamps = TimestampMapper()
        self._started = kind == "audio"  # every Opus packet is a frame of its own

    def subscribe(self) -> Subscription:
        subscription = Subscription(self)
        self.subscriptions.add(subscription)
        subscription.request_keyframe()
        return subscription

    def add(self, packet: RtpPacket, codec: RTCRtpCodecParameters, keyframe_start: bool) -> None:
        if not self._started:
            # Made mid-stream: the jitter buffer must start on a frame's first packet, or its
            # first "frame" would be the tail of one (and could pass for a keyframe).
            if not keyframe_start:
                return
            self._started = True
        try:
            # The jitter buffer reads the depayloaded bytes from the packet, as aiortc's receiver has it.
            packet._data = depayload(codec, packet.payload) if packet.payload else b""  # type: ignore[attr-defined]
        except ValueError:
            return
        lost, frame = self._buffer.add(packet)
        if lost:
            self.keyframes.request()
        if frame is None:
            return
        encoded = Packet(frame.data)
        encoded.pts = self._timestamps.map(frame.timestamp)
        encoded.time_base = fractions.Fraction(1, codec.clockRate)
        encoded.is_keyframe = is_keyframe(self.kind, frame.data)
        for subscription in list(self.subscriptions):
            subscription.offer(encoded)

    def end(self) -> None:
        for subscription in list(self.subscriptions):
            subscription.offer(None)
