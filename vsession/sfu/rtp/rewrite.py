"""Per-subscriber rewriting of sequence numbers and timestamps, and the little VP8 parsing that
forwarding needs.

One outgoing stream (one subscriber's m-line) carries one source after another. Each source has
its own random sequence and timestamp origin (RFC 3550 §5.1), and a receiver keeps one jitter
buffer per SSRC: so every source is shifted to carry on where the previous one stopped, with a
fixed offset while it lasts (a retransmission or a late packet maps to the same number)."""

from __future__ import annotations

import secrets
import time

SEQ_MOD = 1 << 16
TS_MOD = 1 << 32
HALF_SEQ = 1 << 15


def vp8_keyframe_start(payload: bytes) -> bool:
    """True for the first packet of a VP8 keyframe: the payload descriptor's S bit set with
    partition 0 (RFC 7741 §4.2), and the frame's P bit 0 (RFC 6386 §9.1)."""
    size = len(payload)
    if size < 2:
        return False
    first = payload[0]
    if first & 0x17 != 0x10:  # S=1, PID=0
        return False
    pos = 1
    if first & 0x80:  # X: extension bits follow
        ext = payload[1]
        pos = 2
        if ext & 0x80:  # I: picture id, one or two bytes
            if pos >= size:
                return False
            pos += 2 if payload[pos] & 0x80 else 1
        if ext & 0x40:  # L: TL0PICIDX
            pos += 1
        if ext & 0x30:  # T or K: one byte
            pos += 1
    return pos < size and payload[pos] & 0x01 == 0


class Rewriter:
    """Maps one source after another onto one outgoing sequence and timestamp line."""

    __slots__ = (
        "_base",
        "_highest",
        "_in_highest",
        "_last_at",
        "_last_ts",
        "_seq_offset",
        "_ts_offset",
        "clock_rate",
    )

    def __init__(self, clock_rate: int) -> None:
        self.clock_rate = clock_rate
        self._seq_offset = 0
        self._ts_offset = 0
        # Incoming sequence numbers of the current source, unwrapped (counting past 65535): its
        # first and its highest so far. None: the next packet starts a new source.
        self._base: int | None = None
        self._in_highest = 0
        # Where the outgoing line stands: its highest seq so far, that packet's timestamp and when
        # it was sent. Random at first, as RFC 3550 asks (low half: aiortc's SRTP-wrap caution).
        self._highest = secrets.randbelow(HALF_SEQ) - 1
        self._last_ts = secrets.randbelow(TS_MOD)
        self._last_at: float | None = None

    def rebase(self) -> None:
        """The next packet starts a new source on this line."""
        self._base = None

    @property
    def started(self) -> bool:
        return self._base is not None

    def map(self, seq: int, ts: int) -> tuple[int, int] | None:
        """The outgoing (seq, timestamp) for an incoming packet; None for one from before the
        current source's first packet (it belongs to what this line has already left behind)."""
        if self._base is None:
            now = time.monotonic()
            elapsed = 1 if self._last_at is None else max(1, round((now - self._last_at) * self.clock_rate))
            self._base = self._in_highest = seq
            self._seq_offset = (self._highest + 1 - seq) % SEQ_MOD
            self._ts_offset = (self._last_ts + elapsed - ts) % TS_MOD
        else:
            highest = self._in_highest
            unwrapped = highest + (seq - highest + HALF_SEQ) % SEQ_MOD - HALF_SEQ
            if unwrapped < self._base:
                return None
            if unwrapped > highest:
                self._in_highest = unwrapped
        out_seq = (seq + self._seq_offset) % SEQ_MOD
        out_ts = (ts + self._ts_offset) % TS_MOD
        if (out_seq - self._highest) % SEQ_MOD < HALF_SEQ:
            self._highest = out_seq
            self._last_ts = out_ts
            self._last_at = time.monotonic()
        return out_seq, out_ts

    def timestamp(self, ts: int) -> int | None:
        """An incoming timestamp in outgoing terms (for sender reports), once the source started."""
        if self._base is None:
            return None
        return (ts + self._ts_offset) % TS_MOD
