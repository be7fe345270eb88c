"""Pass-through forwarding: publishers' encoded frames go to subscribers without decoding or
re-encoding. The receiver hands over depacketized frames as av.Packet; RTCRtpSender packetizes
an av.Packet as it is. Keyframes cannot be made here, so requests for them (PLI/FIR) are passed
on to the publisher, rate-limited.

This leans on aiortc internals, pinned in pyproject.toml and guarded by
tests/sfu/test_aiortc_internals.py:
- RTCRtpReceiver's private decoder queue, replaced before the receiver starts;
- RTCRtpSender._send_keyframe, which it calls on PLI and FIR;
- RemoteStreamTrack._queue, where received frames wait for recv().
"""

from __future__ import annotations

import asyncio
import fractions
import queue
from collections import deque
from typing import Any, Protocol

from aiortc import MediaStreamTrack, RTCRtpReceiver, RTCRtpSender
from aiortc.mediastreams import MediaStreamError
from av import Packet

from vsession.sfu.forwarding import Source
from vsession.sfu.keyframes import KeyframeRequester

# A subscriber this far behind has lost the thread: drop its backlog and restart on a keyframe,
# rather than let a queue grow while it waits.
MAX_BACKLOG = 90


def is_keyframe(kind: str, data: bytes) -> bool:
    """Every audio frame stands alone; a VP8 frame is a keyframe when its P bit is 0 (RFC 6386 §9.1)."""
    return kind == "audio" or (len(data) > 0 and data[0] & 0x01 == 0)


class _EncodedFrames:
    """Stands in for RTCRtpReceiver's decoder queue. Frames are put here on the event loop by the
    receiver; they go straight to the track as av.Packet. The idle decoder thread only ever gets
    the receiver's stop signal."""

    def __init__(self, receiver: RTCRtpReceiver) -> None:
        self._receiver = receiver
        self._stop: queue.Queue[None] = queue.Queue()

    def put(self, item: Any) -> None:
        if item is None:
            self._stop.put(None)
            return
        codec, frame = item
        packet = Packet(frame.data)
        packet.pts = frame.timestamp
        packet.time_base = fractions.Fraction(1, codec.clockRate)
        packet.is_keyframe = is_keyframe(self._receiver.track.kind, frame.data)
        self._receiver.track._queue.put_nowait(packet)

    def get(self) -> None:
        return self._stop.get()


class Fanout(Protocol):
    """What hands packets to subscriptions: a PacketSource here, or the RTP relay's frame tap."""

    keyframes: KeyframeRequester
    subscriptions: set[Subscription]


class Subscription:
    """One subscriber's view of a source: a bounded backlog that starts on a keyframe."""

    def __init__(self, source: Fanout) -> None:
        self._source = source
        self._backlog: deque[Packet | None] = deque()
        self._ready = asyncio.Event()
        self._waiting_for_key = True
        self.dropped = 0

    def offer(self, packet: Packet | None) -> None:
        if packet is not None:
            if self._waiting_for_key and not packet.is_keyframe:
                self.dropped += 1
                return
            self._waiting_for_key = False
            if len(self._backlog) >= MAX_BACKLOG:
                self._backlog.clear()
                self._waiting_for_key = True
                self.dropped += MAX_BACKLOG
                self.request_keyframe()
                return
        self._backlog.append(packet)
        self._ready.set()

    async def get(self) -> Packet | None:
        """The next packet, or None when the source has ended."""
        while not self._backlog:
            self._ready.clear()
            await self._ready.wait()
        return self._backlog.popleft()

    def request_keyframe(self) -> None:
        self._source.keyframes.request()

    def close(self) -> None:
        self._source.subscriptions.discard(self)


class PacketSource:
    """Reads one received track all the time (aiortc queues frames without bound otherwise) and
    fans its packets out to the subscriptions."""

    def __init__(self, track: MediaStreamTrack, keyframes: KeyframeRequester) -> None:
        self.track = track
        self.keyframes = keyframes
        self.subscriptions: set[Subscription] = set()
        self.task = asyncio.create_task(self._pump())

    def subscribe(self) -> Subscription:
        subscription = Subscription(self)
        self.subscriptions.add(subscription)
        subscription.request_keyframe()
        return subscription

    async def _pump(self) -> None:
        packet: Packet | None
        while True:
            try:
                packet = await self.track.recv()
            except MediaStreamError:
                packet = None
            for subscription in list(self.subscriptions):
                subscription.offer(packet)
            if packet is None:
                return


class Forwarded:
    """What the relay has handed to subscribers' senders since it started: encoded packets (one per
    audio or video frame, before RTP packetisation) and their bytes. Plain ints, added to on the
    event loop's one thread and read by the metrics endpoint on that same thread: no locks."""

    __slots__ = ("bytes", "packets")

    def __init__(self) -> None:
        self.packets = 0
        self.bytes = 0


class ForwardedTrack(MediaStreamTrack):
    """What a subscriber's RTCRtpSender sends: the publisher's packets, untouched."""

    def __init__(self, kind: str, subscription: Subscription, forwarded: Forwarded) -> None:
        super().__init__()
        self.kind = kind
        self.subscription = subscription
        self._forwarded = forwarded

    async def recv(self) -> Packet:
        packet = await self.subscription.get()
        if packet is None:
            self.stop()
            raise MediaStreamError
        forwarded = self._forwarded
        forwarded.packets += 1
        forwarded.bytes += packet.size
        return packet

    def stop(self) -> None:
        self.subscription.close()
        super().stop()


def receive_encoded(receiver: RTCRtpReceiver) -> bool:
    """Swap the receiver's decoder queue so its track yields encoded frames (av.Packet); False if
    the receiver had already started (too late to swap). The benchmarks' receivers use it too."""
    if receiver._RTCRtpReceiver__started:  # type: ignore[attr-defined]
        return False
    receiver._RTCRtpReceiver__decoder_queue = _EncodedFrames(receiver)  # type: ignore[attr-defined]
    return True


class PassthroughRelay:
    """Forwarder that never decodes: about 0.06 cores per forwarded stream here, versus 0.28."""

    def __init__(self) -> None:
        self.forwarded = Forwarded()  # to subscribers only: the recorder's copies are not counted

    def prepare_receiver(self, receiver: RTCRtpReceiver) -> None:
        receive_encoded(receiver)

    def add_source(self, track: MediaStreamTrack, receiver: RTCRtpReceiver) -> Source:
        keyframes = KeyframeRequester(receiver)
        packets = PacketSource(track, keyframes)
        return Source(track, receiver, keyframes, tasks=[packets.task], packets=packets)

    def subscribe(self, source: Source) -> MediaStreamTrack:
        assert source.packets is not None
        return ForwardedTrack(source.track.kind, source.packets.subscribe(), self.forwarded)

    def subscribe_packets(self, source: Source) -> Subscription:
        """Copies of a participant's encoded packets (for the recorder), starting on a keyframe."""
        assert source.packets is not None
        return source.packets.subscribe()

    def prepare_sender(self, sender: RTCRtpSender, source: Source) -> None:
        # A subscriber's PLI/FIR reaches this sender; only the publisher can make a keyframe.
        sender._send_keyframe = source.keyframes.request  # type: ignore[method-assign]

    async def remove_source(self, source: Source) -> None:
        await source.stop()
        if source.packets is not None:
            for subscription in list(source.packets.subscriptions):
                subscription.offer(None)
