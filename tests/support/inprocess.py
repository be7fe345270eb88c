"""An in-process server (so tests can reach the SFU's and recorder's internals) with real aiortc peers."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import web

from tests.support.actors import Agent, Therapist, admitted_clients, enrol_therapist, schedule
from vsession.app import create_app
from vsession.appkeys import AUTH, SERVICES
from vsession.auth import enrolment
from vsession.config import load_settings
from vsession.services import Services


@dataclass
class InProcessCall:
    services: Services
    origin: str
    therapist: Therapist
    session_id: str
    clients: list[Agent]

    def ws(self, who: Agent) -> tuple[str, dict[str, str]]:
        role = "therapist" if who is self.therapist.agent else "guest"
        url = f"{self.origin.replace('http', 'ws', 1)}/ws?role={role}&session={self.session_id}"
        return url, {"Origin": self.origin, "Cookie": who.cookie_header}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
async def inprocess_call(
    aiohttp_server: Callable[..., Awaitable[object]], tmp_path: Path
) -> Callable[[int], Awaitable[InProcessCall]]:
    async def make(clients: int, relay: str = "passthrough", **more: object) -> InProcessCall:
        port = free_port()
        settings = load_settings(
            environ={},
            overrides={
                "data_dir": tmp_path / "data",
                "port": port,
                "ice_loopback": True,
                "relay": relay,
                **more,
            },
        )
        app: web.Application = create_app(settings)
        await aiohttp_server(app, port=port)
        link = await enrolment.create_link(app[AUTH], None, True)

        def people() -> tuple[Therapist, str, list[Agent]]:
            # Blocking HTTP, so in a thread: the server runs on this test's event loop.
            therapist = enrol_therapist(settings.origin, link)
            session_id, links = schedule(therapist, clients)
            return therapist, session_id, admitted_clients(settings.origin, therapist, session_id, links)

        therapist, session_id, agents = await asyncio.to_thread(people)
        return InProcessCall(app[SERVICES], settings.origin, therapist, session_id, agents)

    return make
