"""Shared fixtures: real settings in a temp data dir, the app under aiohttp's test client,
and a live `vsession serve` process for end-to-end and browser tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support.inprocess import inprocess_call  # noqa: F401 (a fixture for tests/sfu and tests/recording)
from tests.support.tools import message, missing
from vsession.config import Settings, load_settings

REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = REPO / "test-artifacts"


def pytest_sessionstart(session: pytest.Session) -> None:
    """Stop at once, naming the Debian package, when a tool the tests run is missing."""
    absent = missing()
    if absent:
        pytest.exit(message(absent), returncode=pytest.ExitCode.USAGE_ERROR)


class FakeClock:
    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.t = start

    def now(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(environ={}, overrides={"data_dir": tmp_path / "data", "port": 0})


@dataclass
class LiveServer:
    url: str
    data_dir: Path
    process: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)

    def setup_link(self) -> str:
        """The first-run link `serve` prints after its URL when no therapist exists."""
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if "/setup#t=" in line:
                return line.strip()
        raise RuntimeError("the server printed no setup link")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def start_server(
    data_dir: Path, *extra: str, command: list[str] | None = None, log: Path | None = None
) -> LiveServer:
    """Start `vsession serve --port 0` and wait for the URL line it prints on stdout.
    `log` collects the server's structured log (stderr), access log included."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VSESSION_")}
    cmd = command or [sys.executable, "-m", "vsession", "serve"]
    process = subprocess.Popen(
        [*cmd, "--data-dir", str(data_dir), "--port", "0", *extra],
        stdout=subprocess.PIPE,
        stderr=log.open("w") if log else subprocess.DEVNULL,
        text=True,
        env=env,
        cwd=REPO,
    )
    assert process.stdout is not None
    lines: list[str] = []
    for line in process.stdout:
        lines.append(line.rstrip("\n"))
        if line.startswith(("http://", "https://")):
            return LiveServer(line.strip(), data_dir, process, lines)
    process.wait()
    raise RuntimeError(f"server exited with {process.returncode} before printing its URL: {lines}")


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
