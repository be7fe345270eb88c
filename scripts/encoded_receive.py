"""Receive encoded frames instead of decoded ones: the light load's receivers count and identify
frames without paying for a decoder. RTCRtpReceiver still depacketises and runs its jitter buffer;
its decoder queue is swapped, before the receiver starts, for one that hands each assembled frame
to the track as av.Packet. The same private hook as vsession's pass-through relay, kept here so
the benchmark does not depend on the server's relay internals (aiortc is pinned exactly)."""

from __future__ import annotations

import fractions
import queue
from typing import Any

from aiortc import RTCRtpReceiver
from av import Packet


class EncodedFrames:
    """Stands in for RTCRtpReceiver's decoder queue; its idle decoder thread only ever gets the
    receiver's stop signal."""

    def __init__(self, receiver: RTCRtpReceiver) -> None:
        self._receiver = receiver
        self._stop: queue.Queue[None] = queue.Queue()

    def put(self, item: Any) -> None:
        if item is None:
            self._stop.put(None)
            return
        codec, frame = item
        packet = Packet(frame.data)
        packet.pts, packet.time_base = frame.timestamp, fractions.Fraction(1, codec.clockRate)
        self._receiver.track._queue.put_nowait(packet)

    def get(self) -> None:
        return self._stop.get()


def receive_encoded(receiver: RTCRtpReceiver) -> bool:
    """Swap the decoder queue; False if the receiver had already started (too late to swap)."""
    if receiver._RTCRtpReceiver__started:  # type: ignore[attr-defined]
        return False
    receiver._RTCRtpReceiver__decoder_queue = EncodedFrames(receiver)  # type: ignore[attr-defined]
    return True
