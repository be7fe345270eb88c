"""Event-loop lag: how late a task that sleeps a short interval wakes up. One asyncio loop carries
every call's media, so anything that blocks it (a stray fsync, a hash, a KDF) shows here first.

Sampled, so cheap: one timer every INTERVAL. The figures over the last LOG_SECONDS go to the log
that often, with the number of live tasks. `LoopLagMonitor.figures()` gives them on demand, and
`bucket_counts` a histogram since start (both for the metrics endpoint). A lag of up to a
millisecond is the timer's own granularity (epoll waits in whole milliseconds)."""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
import math
from collections import deque
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass

from aiohttp import web

log = logging.getLogger("vsession.looplag")

INTERVAL = 0.1  # seconds between samples
LOG_SECONDS = 60.0  # how often the figures are logged, and the window they cover
# Upper bounds (ms) of the lag histogram kept since start, for a metrics endpoint: from the timer's
# own granularity up to pauses a participant hears as a gap.
BUCKETS_MS = (1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0, 5000.0)


@dataclass(frozen=True)
class LagFigures:
    """Loop lag over a window, in milliseconds (nearest-rank percentiles)."""

    samples: int
    p50_ms: float
    p99_ms: float
    max_ms: float


def summarise(lags_ms: Iterable[float]) -> LagFigures:
    ordered = sorted(lags_ms)
    if not ordered:
        return LagFigures(0, 0.0, 0.0, 0.0)

    def rank(q: float) -> float:
        return ordered[max(0, math.ceil(q * len(ordered)) - 1)]

    return LagFigures(len(ordered), rank(0.5), rank(0.99), ordered[-1])


class LoopLagMonitor:
    def __init__(self, interval: float = INTERVAL, log_seconds: float = LOG_SECONDS) -> None:
        self.interval = interval
        self.log_seconds = log_seconds
        # (loop time of waking, lag in ms) over the last log_seconds; a lagging loop samples less
        # often, so the window is cut by time, and the bound only caps memory.
        self._samples: deque[tuple[float, float]] = deque(maxlen=math.ceil(log_seconds / interval) + 1)
        self.worst_ms = 0.0  # since start
        self.samples_taken = 0  # since start
        self.sum_ms = 0.0  # since start
        # Samples per bucket of BUCKETS_MS (not cumulative), the last for lags above every bound.
        self.bucket_counts = [0] * (len(BUCKETS_MS) + 1)
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def figures(self) -> LagFigures:
        """The lag over the last `log_seconds`."""
        if not self._samples:
            return summarise(())
        since = self._samples[-1][0] - self.log_seconds
        return summarise(lag for at, lag in self._samples if at >= since)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        next_log = loop.time() + self.log_seconds
        while True:
            asleep = loop.time()
            await asyncio.sleep(self.interval)
            now = loop.time()
            lag_ms = max(0.0, (now - asleep - self.interval) * 1000)
            self._samples.append((now, lag_ms))
            self.worst_ms = max(self.worst_ms, lag_ms)
            self.samples_taken += 1
            self.sum_ms += lag_ms
            self.bucket_counts[bisect.bisect_left(BUCKETS_MS, lag_ms)] += 1
            if now >= next_log:
                next_log = now + self.log_seconds
                self._log()

    def _log(self) -> None:
        figures = self.figures()
        log.info(
            "event loop lag",
            extra={
                "window_s": self.log_seconds,
                "samples": figures.samples,
                "p50_ms": round(figures.p50_ms, 2),
                "p99_ms": round(figures.p99_ms, 2),
                "max_ms": round(figures.max_ms, 2),
                # Live tasks on the loop: a leak (a task per call or message never ended) shows
                # as a count that only grows; scripts/soak.py reads it.
                "tasks": len(asyncio.all_tasks()),
            },
        )


LOOP_LAG = web.AppKey("loop_lag", LoopLagMonitor)


async def monitor_loop(app: web.Application) -> AsyncIterator[None]:
    """A cleanup context: the monitor runs as long as the app does."""
    monitor = LoopLagMonitor(INTERVAL, LOG_SECONDS)
    app[LOOP_LAG] = monitor
    monitor.start()
    yield
    await monitor.stop()
