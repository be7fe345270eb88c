"""What a benchmark step measures: a fresh `vsession serve` with one `relay` setting, or a fresh
Janus (scripts/janus_server.py), with N 1:1 sessions prepared on it and the participant specs
that join them. The step sees a pid to sample, whether it is alive, how to stop it and its log."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench_common import log_tail
from janus_client import JanusSpec, create_rooms
from janus_server import start_janus
from relay_load import ParticipantSpec

# Plain HTTP actors and a server launcher, with no pytest in them (scripts/bench_relay.py says).
from tests.support.actors import admitted_clients, enrol_therapist, schedule
from tests.support.call_server import Call
from tests.support.live_server import LiveServer, start_server

JANUS = "janus"  # the target name of Janus; any other target is a vsession relay


class RelayUnavailable(Exception):
    """The server refused the `relay` setting: that relay does not exist in this build."""


@dataclass
class Target:
    name: str
    pid: int
    alive: Callable[[], bool]
    stop: Callable[[], object]
    log: Path
    specs: list[ParticipantSpec | JanusSpec]

    def log_tail(self) -> str:
        return log_tail(self.log)


def start_target(name: str, sessions: int, workdir: Path, nice: int, shim: Path | None) -> Target:
    """The server of one step, N sessions ready on it. Stopped again if preparing them fails."""
    if name == JANUS:
        assert shim is not None
        janus = start_janus(workdir, shim, nice)
        target = Target(name, janus.pid, janus.alive, janus.stop, janus.log, [])
        try:
            rooms = [1000 + index for index in range(1, sessions + 1)]
            create_rooms(janus.url, rooms)
            for index, room in enumerate(rooms, start=1):
                t, s1 = 10 * index + 1, 10 * index + 2
                target.specs.append(JanusSpec(f"session{index}/t", janus.url, room, t, s1))
                target.specs.append(JanusSpec(f"session{index}/s1", janus.url, room, s1, t))
        except BaseException:
            janus.stop()
            raise
        return target
    return _start_vsession(name, sessions, workdir, nice)


def _start_vsession(relay: str, sessions: int, workdir: Path, nice: int) -> Target:
    """`vsession serve` (ice_loopback on, the given relay) as tests/support/call_server.py's
    start_call_server does, but with the server's stderr kept in a file (that is where a refused
    setting is explained), and at the given niceness (`nice` only warns, into that file, when it
    may not)."""
    workdir.mkdir(parents=True)
    config = workdir / "vsession.toml"
    config.write_text(f"ice_loopback = true\nrelay = {json.dumps(relay)}\n")
    log = workdir / "server.log"
    command = ["nice", "-n", str(nice), sys.executable, "-m", "vsession", "serve"] if nice else None
    try:
        server = start_server(workdir / "data", "--config", str(config), command=command, log=log)
    except RuntimeError as exc:
        text = log.read_text(errors="replace").strip() if log.exists() else ""
        if "invalid setting 'relay'" in text:
            raise RelayUnavailable(text.splitlines()[-1]) from None
        tail = "\n  ".join(text.splitlines()[-15:])
        raise RuntimeError(f"{exc}\nserver log tail:\n  {tail}") from None
    try:
        specs: list[ParticipantSpec | JanusSpec] = [*prepare_sessions(server, sessions)]
    except BaseException:
        server.stop()
        raise
    return Target(relay, server.process.pid, lambda: server.process.poll() is None, server.stop, log, specs)


def prepare_sessions(server: LiveServer, sessions: int) -> list[ParticipantSpec]:
    """N 1:1 sessions with their client admitted; two participant specs per session."""
    therapist = enrol_therapist(server.url, server.setup_link())
    specs = []
    for index in range(1, sessions + 1):
        session_id, links = schedule(therapist, seats=1, title=f"Bench {index}")
        call = Call(server, therapist, session_id, admitted_clients(server.url, therapist, session_id, links))
        (t_url, t_headers), (c_url, c_headers) = call.therapist_ws(), call.client_ws(0)
        specs.append(ParticipantSpec(f"session{index}/t", t_url, t_headers, other="s1"))
        specs.append(ParticipantSpec(f"session{index}/s1", c_url, c_headers, other="t"))
    return specs
