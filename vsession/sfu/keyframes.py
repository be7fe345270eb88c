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
        self._pending: set[asyncio.Task[None]] = set()
        self._deferred: asyncio.TimerHandle | None = None

    def request(self) -> bool:
        """Ask now, or, when asked very recently, once the interval is over (requests coalesce,
        none is lost). True when a request went out now."""
        track = self._receiver.track
        if track is None or track.kind != "video":
            return False
        wait = self._last + MIN_INTERVAL - time.monotonic()
        if wait > 0:
            if self._deferred is None:
                self._deferred = asyncio.get_running_loop().call_later(wait, self._send)
            return False
        return self._send()

    def _send(self) -> bool:
        self._deferred = None
        ssrcs = [s.source for s in self._receiver.getSynchronizationSources()]
        if not ssrcs:
            return False
        self._last = time.monotonic()
        for ssrc in ssrcs:
            # aiortc has no public API for this; tests/sfu/test_aiortc_internals.py guards it.
            task = asyncio.ensure_future(self._receiver._send_rtcp_pli(ssrc))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)
        return True
