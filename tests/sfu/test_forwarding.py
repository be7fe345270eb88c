"""SenderFeed, the one track a downstream m-line's sender reads while the m-line is reused for one
source after another: a later source's timestamps carry on where the earlier one stopped (one SSRC
must not jump), without touching the objects the relays share; nothing of a detached source is
sent; and a source that ends does not end the feed (aiortc's sender would stop for good)."""

from __future__ import annotations

import asyncio
import fractions
import itertools

import pytest
from aiortc import MediaStreamTrack
from aiortc.codecs.vpx import Vp8Decoder, Vp8Encoder, vp8_depayload
from aiortc.jitterbuffer import JitterFrame
from aiortc.mediastreams import MediaStreamError
from av import AudioFrame, Packet, VideoFrame

from vsession.sfu.forwarding import RTP_CLOCK_WRAP, SenderFeed

VIDEO_CLOCK = fractions.Fraction(1, 90000)
FRAME = 3000  # 90 kHz ticks per frame at 30 fps


class Source(MediaStreamTrack):
    """Hands out what the test puts in, as a relay's subscriber track does; None ends it."""

    kind = "video"

    def __init__(self) -> None:
        super().__init__()
        self.items: asyncio.Queue[object] = asyncio.Queue()

    async def recv(self):  # type: ignore[override]
        item = await self.items.get()
        if item is None:
            raise MediaStreamError
        return item


def packet(pts: int, key: bool = False) -> Packet:
    item = Packet(bytes([0 if key else 1, 2, 3]))
    item.pts, item.time_base, item.is_keyframe = pts, VIDEO_CLOCK, key
    return item


def decoded_frame(colour: int, width: int = 321, height: int = 241) -> VideoFrame:
    """A frame as aiortc's VP8 decoder hands it over (its rows are padded, unlike a new frame's)."""
    frame = VideoFrame(width, height, "yuv420p")
    for plane in frame.planes:
        # A gradient, so that a copy with its rows out of step would not compare equal.
        plane.update(b"".join(bytes([(colour + y) % 256]) * plane.line_size for y in range(plane.height)))
    frame.pts, frame.time_base = 0, VIDEO_CLOCK
    payloads, _ = Vp8Encoder().encode(frame, True)
    [decoded] = Vp8Decoder().decode(JitterFrame(b"".join(vp8_depayload(p) for p in payloads), 0))
    return decoded


async def test_the_first_source_passes_through_untouched() -> None:
    feed, source = SenderFeed("video"), Source()
    feed.attach(source)
    sent = [packet(1000, key=True), packet(1000 + FRAME)]
    for item in sent:
        source.items.put_nowait(item)
    assert [await feed.recv(), await feed.recv()] == sent  # the same objects: no copy, no restamp


async def test_a_later_source_carries_on_the_timeline_of_the_one_before() -> None:
    feed, first, second = SenderFeed("video"), Source(), Source()
    feed.attach(first)
    first.items.put_nowait(packet(7000, key=True))
    last = (await feed.recv()).pts
    feed.attach(second)
    assert first.readyState == "ended"
    # Another publisher's clock starts anywhere (RFC 3550): here just below the wrap.
    shared = [packet(RTP_CLOCK_WRAP - FRAME, key=True), packet(0), packet(FRAME)]
    for item in shared:
        second.items.put_nowait(item)
    out = [await feed.recv() for _ in shared]
    assert 0 < (out[0].pts - last) % RTP_CLOCK_WRAP < 90000 * 60  # later, by wall-clock time
    assert [(b.pts - a.pts) % RTP_CLOCK_WRAP for a, b in itertools.pairwise(out)] == [FRAME, FRAME]
    assert [bytes(p) for p in out] == [bytes(p) for p in shared]
    assert [p.is_keyframe for p in out] == [True, False, False]
    # The relay's packets (shared with other subscribers and the recorder) keep their stamps.
    assert [p.pts for p in shared] == [RTP_CLOCK_WRAP - FRAME, 0, FRAME]


async def test_nothing_of_a_detached_source_is_sent() -> None:
    feed, first, second = SenderFeed("video"), Source(), Source()
    feed.attach(first)
    first.items.put_nowait(packet(1000, key=True))
    first.items.put_nowait(packet(4000))
    await asyncio.sleep(0.05)  # the feed has taken the first one and waits to hand it over
    feed.attach(second)
    second.items.put_nowait(packet(50, key=True))
    assert bytes(await feed.recv()) == bytes(packet(50, key=True))
    assert first.readyState == "ended"


async def test_a_source_that_ends_leaves_the_feed_waiting_for_the_next() -> None:
    feed, first, second = SenderFeed("video"), Source(), Source()
    feed.attach(first)
    reading = asyncio.ensure_future(feed.recv())
    first.items.put_nowait(None)  # its publisher left
    await asyncio.sleep(0.05)
    assert not reading.done()
    feed.attach(second)
    second.items.put_nowait(packet(9000, key=True))
    assert (await reading).is_keyframe
    assert feed.readyState == "live"


@pytest.mark.parametrize(("width", "height"), [(320, 240), (321, 241)])
async def test_decoded_frames_are_copied_with_the_new_timestamp(width: int, height: int) -> None:
    """The decoding relay: its sender re-encodes, so frames, not packets, are restamped."""
    feed, first, second = SenderFeed("video"), Source(), Source()
    feed.attach(first)
    first.items.put_nowait(decoded_frame(60, width, height))
    await feed.recv()
    feed.attach(second)
    shared = decoded_frame(200, width, height)
    shared.pts = 123_456
    second.items.put_nowait(shared)
    out = await feed.recv()
    assert out is not shared and shared.pts == 123_456
    assert out.pts != 123_456 and out.time_base == VIDEO_CLOCK
    assert (out.width, out.height, out.format.name) == (width, height, "yuv420p")
    for plane, copied in zip(shared.planes, out.planes, strict=True):
        rows = [
            bytes(plane)[y * plane.line_size : y * plane.line_size + plane.width] for y in range(plane.height)
        ]
        copies = [
            bytes(copied)[y * copied.line_size : y * copied.line_size + copied.width]
            for y in range(copied.height)
        ]
        assert copies == rows


async def test_decoded_audio_is_copied_with_the_new_timestamp() -> None:
    feed, first, second = SenderFeed("audio"), Source(), Source()
    first.kind = second.kind = "audio"

    def audio(pts: int, level: int) -> AudioFrame:
        frame = AudioFrame(format="s16", layout="stereo", samples=960)
        frame.planes[0].update(bytes([level]) * frame.planes[0].buffer_size)
        frame.pts, frame.sample_rate, frame.time_base = pts, 48000, fractions.Fraction(1, 48000)
        return frame

    feed.attach(first)
    first.items.put_nowait(audio(480_000, 1))
    await feed.recv()
    feed.attach(second)
    shared = audio(5, 7)
    second.items.put_nowait(shared)
    out = await feed.recv()
    assert out is not shared and shared.pts == 5 and out.pts > 480_000
    assert (out.samples, out.sample_rate, out.layout.name) == (960, 48000, "stereo")
    assert bytes(out.planes[0])[: 960 * 4] == bytes(shared.planes[0])[: 960 * 4]
