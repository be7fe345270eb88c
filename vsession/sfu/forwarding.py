"""How media moves from a publisher to its subscribers, behind one interface, so rooms, consent and
recording do not care whether frames are decoded and re-encoded or passed through."""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from aiortc import MediaStreamTrack, RTCRtpReceiver, RTCRtpSender
from aiortc.contrib.media import MediaRelay
from aiortc.mediastreams import MediaStreamError
from av import AudioFrame, Packet, VideoFrame

from vsession.sfu.keyframes import KeyframeRequester

if TYPE_CHECKING:
    from vsession.sfu.passthrough import PacketSource
    from vsession.sfu.rtp.ingress import Ingress


@dataclass(eq=False)
class Source:
    """One published track: a participant's camera, microphone or screen."""

    track: MediaStreamTrack
    receiver: RTCRtpReceiver
    keyframes: KeyframeRequester
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    packets: PacketSource | None = None  # pass-through only: the encoded packets, fanned out
    ingress: Ingress | None = None  # RTP relay only: the packets as they arrive

    async def stop(self) -> None:
        self.track.stop()
        for task in self.tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


class Forwarder(Protocol):
    def prepare_receiver(self, receiver: RTCRtpReceiver) -> None:
        """Called when an upstream m-line is created, before the receiver starts."""
        ...

    def prepare_sender(self, sender: RTCRtpSender, source: Source) -> None:
        """Called when a downstream m-line is created or recycled for `source`."""
        ...

    def add_source(self, track: MediaStreamTrack, receiver: RTCRtpReceiver) -> Source: ...

    def subscribe(self, source: Source) -> MediaStreamTrack:
        """A track for one more receiver; the publisher is asked for a keyframe."""
        ...

    async def remove_source(self, source: Source) -> None: ...


class DecodingRelay:
    """aiortc's MediaRelay: decodes each stream once and re-encodes it per subscriber.
    Simple and robust, but costs about 0.28 cores per forwarded 640x480@30 stream here."""

    def __init__(self) -> None:
        self._relay = MediaRelay()

    def prepare_receiver(self, receiver: RTCRtpReceiver) -> None:
        pass

    def prepare_sender(self, sender: RTCRtpSender, source: Source) -> None:
        # The sender's own encoder answers PLI/FIR with a keyframe. A recycled sender's encoder
        # still holds the previous source's pictures: start the new one on a keyframe.
        sender._send_keyframe()  # type: ignore[attr-defined]

    def add_source(self, track: MediaStreamTrack, receiver: RTCRtpReceiver) -> Source:
        source = Source(track, receiver, KeyframeRequester(receiver))
        # Always read the source, even with no subscriber: aiortc queues received frames without
        # bound until someone reads them.
        source.tasks.append(asyncio.create_task(_drain(self._relay.subscribe(track, buffered=False))))
        return source

    def subscribe(self, source: Source) -> MediaStreamTrack:
        source.keyframes.request()
        # Unbuffered: a slow subscriber gets the latest frame, never a growing queue.
        return self._relay.subscribe(source.track, buffered=False)

    async def remove_source(self, source: Source) -> None:
        await source.stop()


Media = Packet | VideoFrame | AudioFrame
RTP_CLOCK_WRAP = 1 << 32  # RTP timestamps are 32 bits (RFC 3550 §5.1)


class SenderFeed(MediaStreamTrack):
    """The one track a downstream m-line's RTCRtpSender reads for its whole life.

    aiortc's sender stops for good when its track ends, and the SSRC, sequence numbers, RTX state
    and (decoding relay) encoder live on in that sender. So a recycled m-line keeps its sender
    and this track, and only what feeds the track changes. Timestamps of a later source are moved
    to carry on the timeline where the earlier one stopped: a receiver keeps one jitter buffer per
    SSRC and would otherwise see a random jump (RFC 3550 §5.1: each source starts at random)."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self._handoff: asyncio.Queue[tuple[_Feed, Media]] = asyncio.Queue(maxsize=1)
        self._feed: _Feed | None = None
        self._last: tuple[int, float] | None = None  # the last timestamp handed out, and when

    def attach(self, track: MediaStreamTrack) -> None:
        """Read `track` from now on; the previous one is stopped."""
        self.detach()
        self._feed = _Feed(track)
        self._feed.task = asyncio.ensure_future(self._pump(self._feed))

    def detach(self) -> None:
        feed, self._feed = self._feed, None
        if feed is not None:
            # Cancelled rather than awaited: a source that went quiet may never wake its reader.
            feed.task.cancel()
            feed.track.stop()

    async def _pump(self, feed: _Feed) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                # Waits for the sender to take the previous item, so a backlog stays upstream,
                # where each relay bounds it.
                await self._handoff.put((feed, await feed.track.recv()))

    async def recv(self) -> Media:  # type: ignore[override]
        while True:
            feed, item = await self._handoff.get()
            if feed is self._feed:
                return self._restamp(feed, item)
            # Left over from a detached source: never sent on the new one's behalf.

    def _restamp(self, feed: _Feed, item: Media) -> Media:
        now = time.monotonic()
        if item.pts is None or item.time_base is None:
            return item  # aiortc's receivers always stamp; nothing to carry on from otherwise
        if feed.offset is None:
            feed.offset = 0
            if self._last is not None:
                # Continue from the last timestamp sent, as far on as the wall clock moved.
                pts, at = self._last
                elapsed = max(1, round((now - at) / item.time_base))
                feed.offset = (pts + elapsed - item.pts) % RTP_CLOCK_WRAP
        if not feed.offset:
            self._last = (item.pts, now)
            return item
        pts = (item.pts + feed.offset) % RTP_CLOCK_WRAP
        self._last = (pts, now)
        return _restamped(item, pts)

    def stop(self) -> None:
        self.detach()
        super().stop()


@dataclass(eq=False)
class _Feed:
    track: MediaStreamTrack
    task: asyncio.Future[None] = field(init=False)
    offset: int | None = None  # added to this source's timestamps; None until its first item


def _restamped(item: Media, pts: int) -> Media:
    """A copy of `item` with another timestamp: relays share one object among all subscribers
    (and the recorder), so it must not be changed in place."""
    copy: Media
    if isinstance(item, Packet):
        copy = Packet(bytes(item))
        copy.is_keyframe = item.is_keyframe
    elif isinstance(item, VideoFrame):
        copy = VideoFrame(item.width, item.height, item.format.name)
        for plane, into in zip(item.planes, copy.planes, strict=True):
            src, dst = memoryview(plane), memoryview(into)
            if plane.line_size == into.line_size:
                dst[:] = src[: len(dst)]
                continue
            # Rows padded differently: copy row by row.
            row = min(plane.line_size, into.line_size)
            for y in range(into.height):
                dst[y * into.line_size : y * into.line_size + row] = src[
                    y * plane.line_size : y * plane.line_size + row
                ]
    else:
        copy = AudioFrame(format=item.format.name, layout=item.layout.name, samples=item.samples)
        copy.sample_rate = item.sample_rate
        for plane, into in zip(item.planes, copy.planes, strict=True):
            size = min(plane.buffer_size, into.buffer_size)
            memoryview(into)[:size] = memoryview(plane)[:size]
    copy.pts = pts
    copy.time_base = item.time_base
    return copy


async def _drain(track: MediaStreamTrack) -> None:
    with contextlib.suppress(MediaStreamError):
        while True:
            await track.recv()


def make_forwarder(name: str) -> Forwarder:
    """The relay named by the `relay` setting."""
    from vsession.sfu.passthrough import PassthroughRelay
    from vsession.sfu.rtp.relay import RtpRelay

    relays: dict[str, type[Forwarder]] = {
        "decoding": DecodingRelay,
        "passthrough": PassthroughRelay,
        "rtp": RtpRelay,
    }
    return relays[name]()
