"""Delay through a path, measured without a shared media clock: each light sender logs when it
hands every frame of its loop to aiortc, each light receiver logs when each frame arrives and
which one it is (told by its bytes), and the parent matches them. Every process reads the same
CLOCK_MONOTONIC (`time.monotonic()` on Linux), so the difference is the frame's age on arrival.

The media is a loop (scripts/replay_media.py), so a frame index recurs every LOOP_SECONDS; an
arrival is matched to the latest send of that index before it, which is unambiguous while the
delay stays well under the loop. Frames whose bytes occur twice in the loop are not identified.

Added delay is the difference of percentiles, through the server minus over the direct pair,
never a percentile of per-frame differences: the two paths carry different frames."""

from __future__ import annotations

import bisect
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from replay_media import LOOP_SECONDS, EncodedMedia

MAX_DELAY = LOOP_SECONDS / 2  # an older match is a loop late: a lost frame's twin, not a delay


def percentile(values: list[float], q: float) -> float | None:
    """Linear interpolation between closest ranks; None without data."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def added(through: list[float], direct: list[float], q: float) -> float | None:
    a, b = percentile(through, q), percentile(direct, q)
    return None if a is None or b is None else a - b


def identities(frames: list[bytes]) -> dict[bytes, int]:
    """Frame bytes -> index in the loop, for the frames that occur once."""
    seen: dict[bytes, int] = {}
    twice: set[bytes] = set()
    for index, data in enumerate(frames):
        if data in seen:
            twice.add(data)
        seen[data] = index
    return {data: index for data, index in seen.items() if data not in twice}


@dataclass
class FrameLog:
    """(monotonic time, loop index) of each video frame and audio packet, sent or received."""

    video: list[tuple[float, int]] = field(default_factory=list)
    audio: list[tuple[float, int]] = field(default_factory=list)

    def of(self, kind: str) -> list[tuple[float, int]]:
        return self.video if kind == "video" else self.audio


class Identifier:
    """At a receiver: which frame of the loop each encoded frame is."""

    def __init__(self, media: EncodedMedia) -> None:
        self._ids = {"video": identities(media.video), "audio": identities(media.audio)}
        self.log = FrameLog()

    def on_packet(self, kind: str, packet: Any) -> None:
        now = time.monotonic()
        index = self._ids[kind].get(bytes(packet))
        if index is not None:
            self.log.of(kind).append((now, index))


def delays(sent: FrameLog, received: FrameLog, kind: str, t0: float, t1: float) -> list[float]:
    """Milliseconds from send to arrival of each identified frame that arrived in [t0, t1)."""
    sends: dict[int, list[float]] = defaultdict(list)
    for at, index in sent.of(kind):
        sends[index].append(at)  # appended in time order
    result = []
    for at, index in received.of(kind):
        if not t0 <= at < t1:
            continue
        times = sends.get(index, [])
        position = bisect.bisect_right(times, at)
        if position and at - times[position - 1] < MAX_DELAY:
            result.append(1000 * (at - times[position - 1]))
    return result
