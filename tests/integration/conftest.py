"""A live server with loopback ICE for the integration tests (helpers: tests/support/call_server.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.call_server import start_call_server
from tests.support.live_server import LiveServer


@pytest.fixture
def call_server(tmp_path: Path) -> Iterator[LiveServer]:
    server = start_call_server(tmp_path)
    yield server
    server.stop()
