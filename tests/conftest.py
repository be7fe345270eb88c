"""Shared fixtures: real settings in a temp data dir, the app under aiohttp's test client,
and a live `vsession serve` process for end-to-end and browser tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.clock import FakeClock
from tests.support.inprocess import inprocess_call  # noqa: F401 (a fixture for tests/sfu and tests/recording)
from tests.support.live_server import LiveServer, start_server
from tests.support.paths import ARTIFACTS
from tests.support.tools import message, missing
from vsession.config import Settings, load_settings


def pytest_sessionstart(session: pytest.Session) -> None:
    """Stop at once, naming the Debian package, when a tool the tests run is missing."""
    absent = missing()
    if absent:
        pytest.exit(message(absent), returncode=pytest.ExitCode.USAGE_ERROR)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(environ={}, overrides={"data_dir": tmp_path / "data", "port": 0})


@pytest.fixture
def servers() -> Iterator[Callable[..., LiveServer]]:
    """start_server for tests that start several, each stopped when the test ends."""
    started: list[LiveServer] = []

    def start(*args: object, **kwargs: object) -> LiveServer:
        server = start_server(*args, **kwargs)  # type: ignore[arg-type]
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[LiveServer]:
    server = start_server(tmp_path / "data")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
