"""Waiting for the event-loop lag monitor (vsession/looplag.py) to have sampled."""

from __future__ import annotations

import asyncio

from vsession.looplag import LoopLagMonitor


async def samples_after(monitor: LoopLagMonitor, count: int) -> None:
    """Wait until the monitor has taken `count` more samples."""
    target = monitor.samples_taken + count
    for _ in range(1000):  # patience only: about 10 s
        if monitor.samples_taken >= target:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"the monitor took {monitor.samples_taken} samples, expected {target}")
