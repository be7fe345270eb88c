"""Fixtures for the session, link and waiting-room tests: the app and two enrolled therapists
(helpers: tests/support/rooms_api.py and tests/support/app_client.py)."""

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
async def ada(server: Server) -> Therapist:
    return await enrol(server, username="ada", name="Dr. Ada Example")


@pytest.fixture
async def bob(server: Server, ada: Therapist) -> Therapist:
    token = await server.setup_link(admin=False)
    return await enrol(server, username="bob", name="Dr. Bob Example", token=token)
