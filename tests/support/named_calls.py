"""Recorded calls whose people have names, for the recordings tests: the recordings page shows the
session's title and the participants' names, so the world here gives them. An in-process server
(its services reachable), real aiortc peers, a practice key, and a clock that follows real time
until a test moves it on (to reach the erasure of client names)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from aiortc import AudioStreamTrack

from tests.support.actors import Agent, Therapist, admit, client_waits, enrol_therapist, schedule
from tests.support.call_client import CallClient
from tests.support.clock import ShiftedClock
from tests.support.inprocess import free_port
from tests.support.media import ColourTrack
from vsession.app import create_app
from vsession.appkeys import AUTH, SERVICES
from vsession.auth import enrolment
from vsession.config import load_settings
from vsession.recording import age
from vsession.services import Services

COLOURS = [(220, 40, 40), (40, 200, 40), (40, 60, 220), (200, 200, 40)]


@dataclass
class NamedCall:
    services: Services
    origin: str
    therapist: Therapist
    session_id: str
    identity: Path  # the practice's identity file, for stock `age -d`
    clock: ShiftedClock
    clients: dict[str, Agent] = field(default_factory=dict)  # peer id ("s1") -> the client's agent

    def peer(self, pid: str) -> CallClient:
        """A new device (socket and peer connection) for the therapist ("t") or a client."""
        agent = self.therapist.agent if pid == "t" else self.clients[pid]
        role = "therapist" if pid == "t" else "guest"
        url = f"{self.origin.replace('http', 'ws', 1)}/ws?role={role}&session={self.session_id}"
        colour = COLOURS[0 if pid == "t" else int(pid[1:]) % len(COLOURS)]
        tracks = {"camera": ColourTrack(colour), "microphone": AudioStreamTrack()}
        return CallClient(url, {"Origin": self.origin, "Cookie": agent.cookie_header}, tracks)

    async def listing(self) -> list[dict[str, Any]]:
        """GET /api/recordings as the therapist, oldest first."""
        reply = await asyncio.to_thread(self.therapist.agent.get, "/api/recordings")
        return sorted(reply["recordings"], key=lambda r: (r["started_at"], r["segment"]))


async def start_named_call(
    aiohttp_server: Callable[..., Awaitable[object]],
    tmp_path: Path,
    names: list[str],
    title: str,
    **settings: Any,
) -> NamedCall:
    """A session titled `title` with one admitted client per name (seat 1, 2, ...), on an
    in-process server with recording set up."""
    identity_file = tmp_path / "practice-identity.txt"
    identity, recipient = age.generate_identity()
    age.write_identity_file(identity_file, identity, recipient)
    port = free_port()
    config = load_settings(
        environ={},
        overrides={
            "data_dir": tmp_path / "data",
            "port": port,
            "ice_loopback": True,
            "relay": "passthrough",
            "recording_recipient": recipient,
            **settings,
        },
    )
    clock = ShiftedClock()
    app: web.Application = create_app(config, clock=clock)
    await aiohttp_server(app, port=port)
    link = await enrolment.create_link(app[AUTH], None, True)

    def people() -> tuple[Therapist, str, dict[str, Agent]]:
        # Blocking HTTP, so in a thread: the server runs on this test's event loop.
        therapist = enrol_therapist(config.origin, link)
        session_id, links = schedule(therapist, len(names), title=title)
        clients = {}
        for seat, (name, seat_link) in enumerate(zip(names, links, strict=True), start=1):
            clients[f"s{seat}"] = client_waits(config.origin, seat_link, name)
            admit(therapist, session_id, seat)
        return therapist, session_id, clients

    therapist, session_id, clients = await asyncio.to_thread(people)
    return NamedCall(app[SERVICES], config.origin, therapist, session_id, identity_file, clock, clients)
