"""A live server with loopback ICE, a therapist and admitted clients, for real aiortc peers."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

from tests.support.actors import Agent, Therapist, admitted_clients, enrol_therapist, schedule
from tests.support.live_server import LiveServer, start_server


@dataclass
class Call:
    server: LiveServer
    therapist: Therapist
    session_id: str
    clients: list[Agent]

    @property
    def ws_base(self) -> str:
        return self.server.url.replace("http", "ws", 1) + "/ws"

    def therapist_ws(self) -> tuple[str, dict[str, str]]:
        headers = {"Origin": self.server.url, "Cookie": self.therapist.agent.cookie_header}
        return f"{self.ws_base}?role=therapist&session={self.session_id}", headers

    def client_ws(self, index: int) -> tuple[str, dict[str, str]]:
        headers = {"Origin": self.server.url, "Cookie": self.clients[index].cookie_header}
        return f"{self.ws_base}?role=guest&session={self.session_id}", headers


def start_call_server(tmp_path: Path, *extra_settings: str, log: Path | None = None) -> LiveServer:
    config = tmp_path / "vsession.toml"
    config.write_text("\n".join(["ice_loopback = true", *extra_settings]) + "\n")
    return start_server(tmp_path / "data", "--config", str(config), log=log)


async def prepare_call(server: LiveServer, clients: int) -> Call:
    """Enrol a therapist, schedule a session and admit `clients` clients, all over real HTTP."""

    def work() -> Call:
        therapist = enrol_therapist(server.url, server.setup_link())
        session_id, links = schedule(therapist, clients)
        return Call(server, therapist, session_id, admitted_clients(server.url, therapist, session_id, links))

    return await asyncio.to_thread(work)
