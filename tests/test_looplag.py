"""The event-loop lag monitor: it sees a blocked loop, logs its figures in the structured log, and
runs exactly as long as the server app does."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from pathlib import Path

import pytest

from tests.support.looplag import samples_after
from vsession import looplag
from vsession.app import create_app
from vsession.config import load_settings
from vsession.logs import JsonFormatter
from vsession.looplag import LOOP_LAG, LoopLagMonitor, summarise

BLOCK_SECONDS = 0.05


def test_percentiles_are_nearest_rank() -> None:
    assert summarise(float(i) for i in range(1, 101)) == looplag.LagFigures(100, 50.0, 99.0, 100.0)
    assert summarise([3.0]) == looplag.LagFigures(1, 3.0, 3.0, 3.0)
    assert summarise([]) == looplag.LagFigures(0, 0.0, 0.0, 0.0)


async def test_a_blocked_loop_shows_as_lag() -> None:
    monitor = LoopLagMonitor(interval=0.01, log_seconds=60)
    monitor.start()
    try:
        await samples_after(monitor, 3)
        time.sleep(BLOCK_SECONDS)  # noqa: ASYNC251 -- on purpose: what a stray fsync or hash would do
        await samples_after(monitor, 2)
    finally:
        await monitor.stop()
    assert not monitor.running
    figures = monitor.figures()
    assert figures.samples >= 5
    assert figures.max_ms >= 0.8 * BLOCK_SECONDS * 1000, figures
    assert monitor.worst_ms == figures.max_ms


async def test_figures_go_to_the_structured_log(caplog: pytest.LogCaptureFixture) -> None:
    monitor = LoopLagMonitor(interval=0.01, log_seconds=0.2)
    caplog.set_level(logging.INFO, logger="vsession.looplag")
    monitor.start()
    try:
        await samples_after(monitor, 2)
        time.sleep(BLOCK_SECONDS)  # noqa: ASYNC251 -- blocking the loop on purpose
        for _ in range(200):  # patience only: about 10 s
            if caplog.records:
                break
            await asyncio.sleep(0.05)
    finally:
        await monitor.stop()
    assert caplog.records, "the monitor logged nothing"
    entry = json.loads(JsonFormatter().format(caplog.records[0]))
    assert entry["logger"] == "vsession.looplag" and entry["level"] == "info"
    assert entry["msg"] == "event loop lag"
    assert entry["window_s"] == 0.2 and entry["samples"] > 0
    assert entry["max_ms"] >= 0.8 * BLOCK_SECONDS * 1000, entry
    assert entry["p50_ms"] <= entry["p99_ms"] <= entry["max_ms"]


async def test_the_server_app_runs_the_monitor_and_stops_it(aiohttp_server, tmp_path: Path) -> None:
    settings = load_settings(environ={}, overrides={"data_dir": tmp_path / "data", "port": 0})
    app = create_app(settings)
    server = await aiohttp_server(app)
    monitor = app[LOOP_LAG]
    assert monitor.running
    await samples_after(monitor, 1)
    assert monitor.figures().samples >= 1
    await server.close()
    assert not monitor.running
