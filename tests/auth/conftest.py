"""Fixtures for the sign-in tests: the app on a real SQLite file and an enrolled therapist
(helpers: tests/support/app_client.py)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.app_client import Server, Therapist, enrol, open_server
from tests.support.clock import FakeClock
from vsession.config import Settings


@pytest.fixture
async def server(aiohttp_client: Any, settings: Settings, clock: FakeClock) -> Server:
    return await open_server(aiohttp_client, settings, clock)


@pytest.fixture
async def enrolled_therapist(server: Server) -> Therapist:
    return await enrol(server)
