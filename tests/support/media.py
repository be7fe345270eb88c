"""Synthetic media for real aiortc peers: solid-colour video at real-time pace, so a receiver can
tell whose video it got. Audio is aiortc's own AudioStreamTrack (20 ms frames of silence)."""

from __future__ import annotations

from aiortc import VideoStreamTrack
from av import VideoFrame


def rgb_to_yuv(rgb: tuple[int, int, int]) -> tuple[int, int, int]:
    r, g, b = rgb
    y = 0.257 * r + 0.504 * g + 0.098 * b + 16
    u = -0.148 * r - 0.291 * g + 0.439 * b + 128
    v = 0.439 * r - 0.368 * g - 0.071 * b + 128
    return round(y), round(u), round(v)


def yuv_to_rgb(y: float, u: float, v: float) -> tuple[int, int, int]:
    c, d, e = y - 16, u - 128, v - 128
    clamp = lambda x: max(0, min(255, round(x)))  # noqa: E731
    return (
        clamp(1.164 * c + 1.596 * e),
        clamp(1.164 * c - 0.392 * d - 0.813 * e),
        clamp(1.164 * c + 2.017 * d),
    )


class ColourTrack(VideoStreamTrack):
    def __init__(self, rgb: tuple[int, int, int], width: int = 320, height: int = 240) -> None:
        super().__init__()
        self.width, self.height = width, height
        self._yuv = rgb_to_yuv(rgb)

    async def recv(self) -> VideoFrame:
        pts, time_base = await self.next_timestamp()
        frame = VideoFrame(self.width, self.height, "yuv420p")
        for plane, value in zip(frame.planes, self._yuv, strict=True):
            plane.update(bytes([value]) * plane.buffer_size)
        frame.pts = pts
        frame.time_base = time_base
        return frame


def mean_colour(frame: VideoFrame) -> tuple[int, int, int]:
    """The colour at the centre of a received frame."""
    yuv = frame.reformat(format="yuv420p")
    values = []
    for index, plane in enumerate(yuv.planes):
        width = frame.width // (2 if index else 1)
        height = frame.height // (2 if index else 1)
        row = bytes(plane)[(height // 2) * plane.line_size : (height // 2) * plane.line_size + width]
        values.append(row[width // 2])
    return yuv_to_rgb(*values)


# A frame counter stamped into the picture, for tests that must tell exactly which frames a
# recording holds. The counter's 16 bits are 16 blocks of 20x20 px in a row (white = 1, MSB
# first), and a second row lower down holds their complement, so a frame whose blocks VP8 smeared
# (or a frame from some other track) decodes to None rather than to a wrong number.
COUNTER_BITS = 16
COUNTER_BLOCK = 20
COUNTER_ROWS = (80, 140)  # top edge of the bits row and of the complement row
_BLACK, _WHITE, _GREY = 16, 235, 128


class CounterTrack(VideoStreamTrack):
    """Real-time 320x240 video whose frame number n (1, 2, ...) is in the luma of frame n.
    `counter` is the number of the latest frame handed to the encoder."""

    width, height = 320, 240

    def __init__(self) -> None:
        super().__init__()
        self.counter = 0

    async def recv(self) -> VideoFrame:
        pts, time_base = await self.next_timestamp()
        self.counter += 1
        frame = counter_frame(self.counter)
        frame.pts = pts
        frame.time_base = time_base
        return frame


def counter_frame(counter: int) -> VideoFrame:
    width, height = CounterTrack.width, CounterTrack.height
    luma = bytearray([_GREY]) * (width * height)
    bits = [(counter >> (COUNTER_BITS - 1 - i)) & 1 for i in range(COUNTER_BITS)]
    for top, invert in zip(COUNTER_ROWS, (False, True), strict=True):
        for index, bit in enumerate(bits):
            value = _WHITE if bit ^ invert else _BLACK
            left = index * COUNTER_BLOCK
            for y in range(top, top + COUNTER_BLOCK):
                luma[y * width + left : y * width + left + COUNTER_BLOCK] = bytes([value]) * COUNTER_BLOCK
    frame = VideoFrame(width, height, "yuv420p")
    frame.planes[0].update(bytes(luma))
    frame.planes[1].update(bytes([128]) * frame.planes[1].buffer_size)
    frame.planes[2].update(bytes([128]) * frame.planes[2].buffer_size)
    return frame


def read_counter(frame: VideoFrame) -> int | None:
    """The counter stamped by CounterTrack, or None if the frame does not carry a clean one."""
    if (frame.width, frame.height) != (CounterTrack.width, CounterTrack.height):
        frame = frame.reformat(width=CounterTrack.width, height=CounterTrack.height)
    if frame.format.name != "yuv420p":
        frame = frame.reformat(format="yuv420p")
    plane = frame.planes[0]
    data, stride = bytes(plane), plane.line_size

    def bit(top: int, index: int) -> int | None:
        # The mean of the block's middle 10x10, well clear of its edges.
        left = index * COUNTER_BLOCK + 5
        total = sum(sum(data[y * stride + left : y * stride + left + 10]) for y in range(top + 5, top + 15))
        mean = total / 100
        return 1 if mean > 176 else 0 if mean < 80 else None

    value = 0
    for index in range(COUNTER_BITS):
        b, inverse = bit(COUNTER_ROWS[0], index), bit(COUNTER_ROWS[1], index)
        if b is None or inverse is None or b == inverse:
            return None
        value = value << 1 | b
    return value
