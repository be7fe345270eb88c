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
