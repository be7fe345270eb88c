"""The load generator's processes for one benchmark step: 2N participants (scripts/relay_load.py
for vsession, scripts/janus_client.py for Janus) and the direct pair, each in its own process,
forked from a forkserver that has already imported aiortc. Leaving the `with` block stops every
one of them, however the step ends (error, Ctrl-C, SIGTERM)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.context import ForkServerContext
from multiprocessing.process import BaseProcess

from janus_client import JanusSpec, janus_participant_process
from relay_load import (
    ParticipantSpec,
    Recording,
    direct_process,
    light_direct_process,
    light_participant_process,
    participant_process,
)
from replay_media import EncodedMedia


@dataclass
class Worker:
    name: str
    process: BaseProcess
    control: Connection
    direct: bool
    ready: bool = False
    recording: Recording | None = None


class Load:
    """The participant processes of one step."""

    def __init__(self, ctx: ForkServerContext, video_bps: int, media: EncodedMedia | None = None) -> None:
        self._ctx = ctx
        self._video_bps = video_bps
        self._media = media  # the light load's encoded loops; None for the full load
        self.workers: list[Worker] = []

    def __enter__(self) -> Load:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start_participant(self, spec: ParticipantSpec | JanusSpec) -> None:
        ours, theirs = self._ctx.Pipe()
        target: Callable[..., None]
        load = self._media if self._media is not None else self._video_bps
        if isinstance(spec, JanusSpec):
            target, args = janus_participant_process, (spec, theirs, load)
        elif self._media is not None:
            target, args = light_participant_process, (spec, theirs, self._media)
        else:
            target, args = participant_process, (spec, theirs, self._video_bps)
        process = self._ctx.Process(target=target, args=args, name=spec.name, daemon=True)
        self._launch(Worker(spec.name, process, ours, direct=False), theirs)

    def start_direct_pair(self) -> None:
        a_link, b_link = self._ctx.Pipe()
        for name, offerer, link in (("direct/a", True, a_link), ("direct/b", False, b_link)):
            ours, theirs = self._ctx.Pipe()
            if self._media is not None:
                target: Callable[..., None] = light_direct_process
                args: tuple[object, ...] = (name, offerer, theirs, link, self._media)
            else:
                target, args = direct_process, (name, offerer, theirs, link, self._video_bps)
            process = self._ctx.Process(target=target, args=args, name=name, daemon=True)
            self._launch(Worker(name, process, ours, direct=True), theirs, link)

    def _launch(self, worker: Worker, *child_ends: Connection) -> None:
        worker.process.start()
        for end in child_ends:
            end.close()  # the child has its own copy; ours would hide the child's exit from us
        self.workers.append(worker)

    def pids(self) -> list[int]:
        return [w.process.pid for w in self.workers if w.process.pid is not None]

    def wait_ready(self, timeout: float, alive: Callable[[], bool]) -> list[str]:
        """Wait until every worker receives media both ways; the names of those that never did."""
        deadline = time.monotonic() + timeout
        while (pending := [w for w in self.workers if not w.ready]) and time.monotonic() < deadline:
            if not alive():
                break
            for conn in wait([w.control for w in pending], timeout=min(0.5, deadline - time.monotonic())):
                worker = next(w for w in pending if w.control is conn)
                try:
                    message = conn.recv()
                except EOFError:  # the process died; its stderr says why
                    worker.ready = True
                    worker.recording = Recording(worker.name, error="process exited early")
                    continue
                worker.ready = isinstance(message, tuple) and message[0] == "ready"
        return [w.name for w in self.workers if not w.ready or (w.recording and w.recording.error)]

    def collect(self, timeout: float = 20) -> None:
        """Tell every worker to stop and gather its recording."""
        for worker in self.workers:
            with contextlib.suppress(OSError):
                worker.control.send("stop")
        deadline = time.monotonic() + timeout
        while (pending := [w for w in self.workers if w.recording is None]) and time.monotonic() < deadline:
            for conn in wait([w.control for w in pending], timeout=max(0.0, deadline - time.monotonic())):
                worker = next(w for w in pending if w.control is conn)
                try:
                    message = conn.recv()
                except EOFError:
                    worker.recording = Recording(worker.name, error="exited without a report")
                    continue
                if isinstance(message, Recording):
                    worker.recording = message

    def close(self) -> None:
        for worker in self.workers:
            worker.process.join(timeout=0.1 if worker.recording is None else 5)
        for worker in self.workers:
            if worker.process.is_alive():
                worker.process.terminate()
        for worker in self.workers:
            worker.process.join(timeout=5)
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join()
            worker.control.close()
        self.workers = []
