"""Asking a publisher for a keyframe (RTCP PLI), rate-limited so a crowd of subscribers, or a
flood from one of them, cannot make the publisher send nothing but keyframes."""

from __future__ import annotations

import asyncio
import time

from aiortc import RTCRtpReceiver

MIN_INTERVAL = 0.5  # seconds between requests to one publisher


class KeyframeRequester:
    def __init__(self, receiver: RTCRtpReceiver) -> None:
        self._receiver = receiver
        self._last = 0.0
        self.sent = 0
        self._pending: set[asyncio.Task[None]] = set()

    def request(self) -> bool:
        """Ask now unless asked very recently; True when a request went out."""
        now = time.monotonic()
        if (
            now - self._last < MIN_INTERVAL
            or self._receiver.track is None
            or self._receiver.track.kind != "video"
        ):
            return False
        ssrcs = [s.source for s in self._receiver.getSynchronizationSources()]
        if not ssrcs:
            return False
        self._last = now
        self.sent += 1
        for ssrc in ssrcs:
            # aiortc has no public API for this; tests/sfu/test_aiortc_internals.py guards it.
            task = asyncio.ensure_future(self._receiver._send_rtcp_pli(ssrc))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)
        return True
