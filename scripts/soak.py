#!/usr/bin/env python3
"""Soak: does the server's footprint stay flat over a long run of real calls?

One `vsession serve` (pass-through relay, loopback ICE, recording on) carries --sessions concurrent
1:1 calls for --duration seconds, each with its own therapist account; one of them is recorded for
the whole run (its therapist asks, its client accepts, as scripts/bench_record.py --loop-lag does).
Every participant is a real
aiortc peer in its own process under bench_relay's light load (scripts/replay_media.py: VP8
640x480@30 at --video-bps and Opus, encoded once by this process and replayed; received frames are
counted, not decoded), and sends the page's ping every minute (web/js/protocol.js), which keeps a
therapist's sign-in from going idle on a long run. From t = 0 each participant watches its call:
10 s without video from the other party, or a failed peer connection, is reported at once, since a
dropped call would otherwise pass for a lighter load.

The server process is sampled every --every seconds: RSS, CPU (utime+stime of all its threads,
from /proc), open file descriptors (/proc/<pid>/fd), threads, and asyncio tasks. The task count
and the loop lag come from the server's own loop-lag monitor (vsession/looplag.py), whose log line
carries the number of live tasks; its period is set to --every for this run only, and each of its
lines triggers one sample. The participants', the whole machine's and other work's CPU are read as
bench_relay does ("other" = machine - server - participants; on a shared machine, other people's
work, which disturbs the CPU figures).

Timeline: t = 0 when every call carries media both ways and the recording is running. The first
--warmup seconds settle caches, buffers and the allocator. Growth = mean over the last --window
seconds against the mean over the first --window seconds after the warm-up (defaults: the 2nd
minute against the 10th), for RSS, descriptors, tasks, threads and server CPU. Goal (issue 11):
growth under 5% for each. The server is also sampled idle before the calls and 10 s after every
participant has left, when descriptors, tasks and threads should be back where they started.

Exit status: 0 if the goal is met, 1 if some growth is over it, 3 if something went wrong (a
dropped call or another participant's error, an error in the server's log, an ICE connection that
lost consent, the recording incomplete, descriptors or tasks not back to idle; the work directory
with the server's log and data is then kept), 2 for bad arguments.

The participants share the machine with the server, which runs at nice -15 (--server-nice) as in
bench_relay; they run at nice -10 (--participant-nice) as in bench_record --loop-lag, so other work
on a shared machine does not starve them. Measured on 2 shared cores, a 1:1 call cost the server
about 0.13 cores and each light participant about 0.09, so 10 calls ask for about 3 cores: on a
2-core machine the participants then lag, and aioice ends the server's ICE connections to them (its
consent checks wait 0.5 s, six misses end a call), which the run reports. Give it more cores, or
fewer --sessions.

Usage: .venv/bin/python scripts/soak.py [--sessions 10] [--duration 600] [--warmup 60]
       [--window 60] [--every 5] [--wait-for-quiet 60]
A short check: .venv/bin/python scripts/soak.py --sessions 3 --duration 60 --warmup 10 --window 20
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import shutil
import signal
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

# Imported as bench_record imports them (this folder is on sys.path when a script here runs), so the
# replayed tracks are the very classes relay_load's client looks for.
from bench_common import git_version, log_tail, on_sigterm  # noqa: E402
from bench_record import (  # noqa: E402
    LagLog,
    Participants,
    consent,
)
from bench_sampling import CORES, Sample, busy_cores, rss_bytes, take_sample, wait_for_quiet  # noqa: E402
from bench_step import FPS_FLOOR  # noqa: E402
from relay_load import EncodedCallClient, ParticipantSpec  # noqa: E402
from replay_media import EncodedMedia, PacketTally, ReplayAudioTrack, ReplayVideoTrack, encode_media  # noqa: E402

from tests.support.actors import admitted_clients, enrol_therapist, schedule  # noqa: E402
from tests.support.call_client import CallClient  # noqa: E402
from tests.support.call_server import Call  # noqa: E402
from tests.support.live_server import LiveServer, start_server  # noqa: E402
from vsession.recording import age  # noqa: E402

GOAL_GROWTH = 0.05  # issue 11: "growth under 5% after warm-up"
PING_SECONDS = 60.0  # the page's ping (web/js/protocol.js)
MEDIA_GAP = 10.0  # seconds without video from the other party that count as a dropped call
SETTLE_SECONDS = 10.0  # after the participants leave, before the "after" sample
DISTURBED = 0.25  # cores of other work above which the CPU figures are flagged
MIB = 2**20
MAX_DURATION = 10_000.0  # seconds; see parse_args


# ---------------------------------------------------------------------------------------------
# Participants


def soak_participant_process(spec: ParticipantSpec, control: Connection, media: EncodedMedia) -> None:
    """Process entry point: bench_record's recorded light participant, pinging as the page does."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when participants stop
    asyncio.run(_soak_participant(spec, control, media))


async def _soak_participant(spec: ParticipantSpec, control: Connection, media: EncodedMedia) -> None:
    loop = asyncio.get_running_loop()
    commands: asyncio.Queue[str] = asyncio.Queue()

    def on_control() -> None:
        try:
            commands.put_nowait(control.recv())
        except (EOFError, OSError):  # the parent is gone
            loop.remove_reader(control.fileno())
            commands.put_nowait("stop")

    def report(message: tuple[Any, ...]) -> None:
        with contextlib.suppress(OSError):
            control.send(message)

    tally = PacketTally()

    def on_frame(peer: str, source: str, packet: Any) -> None:
        if peer == spec.other:
            tally.on_packet("video" if source == "camera" else "audio", packet)

    tracks = {"camera": ReplayVideoTrack(media), "microphone": ReplayAudioTrack(media)}
    client = EncodedCallClient(spec.ws_url, spec.headers, tracks, on_frame=on_frame)
    loop.add_reader(control.fileno(), on_control)
    watchers: list[asyncio.Task[None]] = []
    try:
        await client.join()
        watchers.append(asyncio.create_task(_ping(client, report)))
        await client.wait_for(lambda: bool(tally.video) and bool(tally.audio), patience=60)
        report(("ready",))
        while (command := await commands.get()) != "stop":
            if command == "record":
                await consent(client, therapist=spec.other != "t")
                report(("recording",))
            elif command == "watch":  # t = 0: from now on a gap in the media is a dropped call
                watchers.append(asyncio.create_task(_watch_media(client, tally, report)))
    except Exception as exc:  # reported to the parent, which stops the run
        report(("error", repr(exc)))
        while await commands.get() != "stop":
            pass
    finally:
        for watcher in watchers:
            watcher.cancel()
        loop.remove_reader(control.fileno())
        report(("stopped", tally.video))
        with contextlib.suppress(Exception):
            await asyncio.wait_for(client.close(), 5)


async def _ping(client: CallClient, report: Callable[[tuple[Any, ...]], None]) -> None:
    """Ping as the page does; a socket the server has closed makes the send fail, and that is said."""
    while True:
        await asyncio.sleep(PING_SECONDS)
        try:
            await client.send({"type": "ping"})
        except Exception as exc:
            report(("error", f"ping failed, the socket is gone: {exc!r}"))
            return


async def _watch_media(
    client: CallClient, tally: PacketTally, report: Callable[[tuple[Any, ...]], None]
) -> None:
    """A call the server dropped would look like a lighter load, not a leak; say so at once."""
    while True:
        await asyncio.sleep(1.0)
        gap = time.monotonic() - tally.video[-1]
        pc = client.pc
        state = f"{pc.connectionState}, ICE {pc.iceConnectionState}" if pc is not None else "none"
        if gap > MEDIA_GAP or (pc is not None and pc.connectionState in ("failed", "closed")):
            report(("error", f"no video from the other party for {gap:.0f} s; peer connection {state}"))
            return


class SoakParticipants(Participants):
    """bench_record's participant processes (their starting, waiting and stopping), each running
    the soak's participant."""

    entry_point = soak_participant_process

    def errors(self) -> list[str]:
        """Errors participants have reported since the last call, without waiting."""
        found = []
        for member in self.members:
            with contextlib.suppress(EOFError, OSError):
                while member.control.poll():
                    message = member.control.recv()
                    if message[0] == "error":
                        found.append(f"{member.spec.name}: {message[1]}")
        return found


# ---------------------------------------------------------------------------------------------
# Samples of the server process


@dataclass
class Point:
    """One sample of the server process, taken when its lag monitor logged a line."""

    at: float  # seconds since t = 0
    rss: int
    fds: int
    threads: int
    tasks: int
    lag_p99_ms: float
    sample: Sample  # CPU of server, participants and machine, cumulative
    cores: float = 0.0  # server CPU since the previous point, in cores
    load_cores: float = 0.0
    machine_cores: float = 0.0

    @property
    def other_cores(self) -> float:
        return max(0.0, self.machine_cores - self.cores - self.load_cores)


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def thread_count(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    raise RuntimeError(f"no Threads line for pid {pid}")


def take_point(entry: dict[str, Any], pid: int, pids: Sequence[int], t0: float, last: Point | None) -> Point:
    if "tasks" not in entry:
        raise RuntimeError("the server's loop-lag line has no 'tasks' field (vsession/looplag.py)")
    sample = take_sample(pid, pids)
    point = Point(
        sample.time - t0,
        rss_bytes(pid),
        open_fds(pid),
        thread_count(pid),
        int(entry["tasks"]),
        float(entry["p99_ms"]),
        sample,
    )
    if last is not None:
        seconds = sample.time - last.sample.time
        point.cores = (sample.server_cpu - last.sample.server_cpu) / seconds
        point.load_cores = (sample.load_cpu - last.sample.load_cpu) / seconds
        (busy0, total0), (busy1, total1) = last.sample.machine, sample.machine
        point.machine_cores = CORES * (busy1 - busy0) / max(1, total1 - total0)
    return point


# ---------------------------------------------------------------------------------------------
# The run


@dataclass
class Soak:
    points: list[Point] = field(default_factory=list)
    idle: Point | None = None
    after: Point | None = None
    receivers: list[list[float]] = field(default_factory=list)  # arrival times per receiver, from t = 0
    problems: list[str] = field(default_factory=list)
    segments: list[Segment] = field(default_factory=list)  # the recorded session's, at the end
    log_errors: list[str] = field(default_factory=list)
    consent_expired: int = 0  # the server's ICE connections that lost consent (see SERVE_FOR_SOAK)
    workdir: Path | None = None  # the server's data and log


# `vsession serve` as bench_record's SERVE_WITH_WINDOW runs it (the lag monitor's period from the
# first argument), with aioice's ICE log kept at info: a call the server drops then says why in the
# server's log (as "Consent to send expired"), where the server's own settings would hide it.
SERVE_FOR_SOAK = (
    "import logging, sys; from vsession import logs, looplag; looplag.LOG_SECONDS = float(sys.argv.pop(1)); "
    "setup = logs.setup; "
    "logs.setup = lambda level: (setup(level), logging.getLogger('aioice.ice').setLevel(logging.INFO))[0]; "
    "from vsession.cli import main; raise SystemExit(main())"
)


def start_soak_server(workdir: Path, recipient: str, args: argparse.Namespace) -> LiveServer:
    config = workdir / "vsession.toml"
    settings = ["ice_loopback = true", 'relay = "passthrough"', f'recording_recipient = "{recipient}"']
    config.write_text("\n".join(settings) + "\n")
    command = [sys.executable, "-c", SERVE_FOR_SOAK, str(args.every), "serve"]
    if args.server_nice:
        command = ["nice", "-n", str(args.server_nice), *command]  # nice execs: same pid
    return start_server(
        workdir / "data", "--config", str(config), command=command, log=workdir / "server.log"
    )


def prepare_calls(server: LiveServer, sessions: int) -> list[ParticipantSpec]:
    """N 1:1 sessions, each with its own therapist (one account keeps at most 8 sockets, see
    vsession/rooms/registry.py), its client admitted; two participant specs per session."""
    admin = enrol_therapist(server.url, server.setup_link())
    specs = []
    for index in range(1, sessions + 1):
        therapist = admin
        if index > 1:
            link = admin.agent.post("/api/setup-links", {"admin": False})["url"]
            therapist = enrol_therapist(server.url, link, username=f"therapist{index}", name=f"Dr. {index}")
        session_id, links = schedule(therapist, seats=1, title=f"Soak {index}")
        call = Call(server, therapist, session_id, admitted_clients(server.url, therapist, session_id, links))
        (t_url, t_headers), (c_url, c_headers) = call.therapist_ws(), call.client_ws(0)
        specs.append(ParticipantSpec(f"session{index}/t", t_url, t_headers, other="s1"))
        specs.append(ParticipantSpec(f"session{index}/s1", c_url, c_headers, other="t"))
    return specs


def run(args: argparse.Namespace, media: EncodedMedia) -> Soak:
    workdir = Path(tempfile.mkdtemp(prefix="vsession-soak-"))
    soak = Soak(workdir=workdir)
    _, recipient = age.generate_identity()
    recorded, others = (
        SoakParticipants(media, args.participant_nice),
        SoakParticipants(media, args.participant_nice),
    )
    server = start_soak_server(workdir, recipient, args)  # stopped in the finally below, whatever happens
    pid = server.process.pid
    log = LagLog(workdir / "server.log")
    t0 = time.monotonic()
    try:
        specs = prepare_calls(server, args.sessions)
        log.skip()
        soak.idle = take_point(log.next(args.every + 30), pid, [], t0, None)

        for index, spec in enumerate(specs):
            (recorded if index < 2 else others).start(spec)  # session 1 is recorded
        patience = 60 + 5 * len(specs)
        recorded.wait_all("ready", patience)
        others.wait_all("ready", patience)
        recorded.tell("record")
        recorded.wait_all("recording", patience=60)
        say(f"{args.sessions} call(s) carry media both ways, session 1 is recording: t = 0")

        t0 = time.monotonic()
        recorded.tell("watch")
        others.tell("watch")
        pids = recorded.pids() + others.pids()
        log.skip()
        last = take_point(log.next(args.every + 30), pid, pids, t0, None)
        next_row = args.window
        while last.at < args.duration:
            point = take_point(log.next(args.every + 30), pid, pids, t0, last)
            soak.points.append(point)
            last = point
            for error in recorded.errors() + others.errors():
                soak.problems.append(error)
                say(f"  PROBLEM at t = {point.at:.0f} s: {error}")
            if point.at >= next_row:
                row = [p for p in soak.points if next_row - args.window <= p.at < next_row]
                say(f"  [{next_row:5.0f} s] {progress_line(row or [point])}")
                next_row += args.window

        recorded.stop()
        others.stop()
        time.sleep(SETTLE_SECONDS)
        log.skip()
        soak.after = take_point(log.next(args.every + 30), pid, [], t0, None)
    except Exception as exc:
        soak.problems.append(f"the run stopped: {exc!r}\n{log_tail(workdir / 'server.log')}")
    finally:
        recorded.stop()  # a second stop of stopped processes does nothing
        others.stop()
        server.stop()
    soak.receivers = [[t - t0 for t in m.video] for m in recorded.members + others.members]
    try:
        soak.segments = recorded_segments(server.data_dir / "vsession.sqlite3")
    except sqlite3.Error as exc:
        soak.problems.append(f"could not read the recordings: {exc}")
    soak.log_errors, soak.consent_expired = read_log(workdir / "server.log")
    return soak


@dataclass(frozen=True)
class Segment:
    number: int
    seconds: float
    bytes: int
    state: str
    end_reason: str


def recorded_segments(db_path: Path) -> list[Segment]:
    """The recording's segments. The first covers the whole run; when the participants leave, the
    one who leaves last may be recorded alone for a moment (consent then covers only them)."""
    with closing(sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)) as db:
        rows = db.execute(
            "SELECT segment, started_at, ended_at, bytes, state, end_reason FROM recordings ORDER BY segment"
        ).fetchall()
    return [
        Segment(n, (end or start) - start, size or 0, state, reason or "")
        for n, start, end, size, state, reason in rows
    ]


def read_log(path: Path) -> tuple[list[str], int]:
    """The server's log entries at level error or above (a traceback is logged at error), and how
    many ICE connections lost consent."""
    errors, expired = [], 0
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        with contextlib.suppress(ValueError):
            entry = json.loads(line)
            if not isinstance(entry, dict):
                continue
            if entry.get("level") in ("error", "critical"):
                errors.append(str(entry.get("msg", line))[:200])
            expired += str(entry.get("msg", "")).endswith("Consent to send expired")
    return errors, expired


# ---------------------------------------------------------------------------------------------
# Report


METRICS: dict[str, Callable[[Point], float]] = {
    "RSS": lambda p: p.rss / MIB,
    "descriptors": lambda p: p.fds,
    "tasks": lambda p: p.tasks,
    "threads": lambda p: p.threads,
    "server CPU": lambda p: p.cores,
}
UNITS = {"RSS": " MiB", "server CPU": " cores"}


def mean_of(points: list[Point], metric: Callable[[Point], float]) -> float:
    return statistics.mean(metric(p) for p in points) if points else float("nan")


def progress_line(points: list[Point]) -> str:
    return (
        f"RSS {mean_of(points, METRICS['RSS']):.1f} MiB, {mean_of(points, METRICS['descriptors']):.0f} fds, "
        f"{mean_of(points, METRICS['tasks']):.0f} tasks, {mean_of(points, METRICS['threads']):.0f} threads, "
        f"server {mean_of(points, METRICS['server CPU']):.3f} cores, "
        f"lag p99 {max(p.lag_p99_ms for p in points):.1f} ms"
    )


def fps(receivers: list[list[float]], start: float, end: float) -> list[float]:
    return [sum(start <= t < end for t in times) / (end - start) for times in receivers]


def table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(c) for c in column) for column in zip(headers, *rows, strict=True)]
    return "\n".join(
        "  ".join(c.rjust(n) for c, n in zip(line, widths, strict=True)) for line in [headers, *rows]
    )


def row_starts(args: argparse.Namespace) -> list[float]:
    return [k * args.window for k in range(math.ceil(args.duration / args.window))]


def report(args: argparse.Namespace, soak: Soak) -> int:
    """Print the tables and the verdict; the exit status."""
    headers = ["t (s)", "RSS MiB", "fds", "tasks", "threads", "server cores", "lag p99 ms"]
    headers += ["fps min/mean", "participants", "machine", "other"]
    rows = []
    for start in row_starts(args):
        end = min(start + args.window, args.duration)
        points = [p for p in soak.points if start <= p.at < end]
        if points:
            rate = fps(soak.receivers, start, end)
            other = mean_of(points, lambda p: p.other_cores)
            rows.append(
                [
                    f"{start:.0f}-{end:.0f}",
                    f"{mean_of(points, METRICS['RSS']):.1f}",
                    f"{mean_of(points, METRICS['descriptors']):.0f}",
                    f"{mean_of(points, METRICS['tasks']):.0f}",
                    f"{mean_of(points, METRICS['threads']):.0f}",
                    f"{mean_of(points, METRICS['server CPU']):.3f}",
                    f"{max(p.lag_p99_ms for p in points):.1f}",
                    f"{min(rate):.1f}/{statistics.mean(rate):.1f}" if rate else "-",
                    f"{mean_of(points, lambda p: p.load_cores):.2f}",
                    f"{mean_of(points, lambda p: p.machine_cores):.2f}",
                    f"{other:.2f}" + (" (disturbed)" if other > DISTURBED else ""),
                ]
            )
    say("")
    say(
        f"the server process every {args.every:g} s, means per {args.window:g} s "
        "(t = 0: all calls up, one recording)"
    )
    say(table(headers, rows))

    for label, point in (("idle, before the calls", soak.idle), ("10 s after the calls ended", soak.after)):
        if point is not None:
            say(
                f"{label}: RSS {point.rss / MIB:.1f} MiB, {point.fds} fds, {point.tasks} tasks, "
                f"{point.threads} threads"
            )
    if soak.idle is not None and soak.after is not None:
        # Threads are left out: an executor keeps the threads it once started, idle, by design.
        if soak.after.fds > soak.idle.fds or soak.after.tasks > soak.idle.tasks:
            soak.problems.append("descriptors or tasks did not come back to their idle count after the calls")
    rates = [fps(soak.receivers, s, min(s + args.window, args.duration)) for s in row_starts(args)]
    slowest = min((min(rate) for rate in rates if rate), default=0.0)
    if slowest < 1:
        soak.problems.append("a receiver got no video for a whole row: a call stopped carrying media")
    elif slowest < FPS_FLOOR:
        say(f"(a receiver fell to {slowest:.1f} fps: the machine did not keep up with the load)")

    early = [p for p in soak.points if args.warmup <= p.at < args.warmup + args.window]
    late = [p for p in soak.points if args.duration - args.window <= p.at]
    met = bool(early and late)
    say("")
    say(
        f"growth after warm-up: mean of t = {args.warmup:g}-{args.warmup + args.window:g} s "
        f"({len(early)} samples) against t = {args.duration - args.window:g}-{args.duration:g} s "
        f"({len(late)} samples); goal under {GOAL_GROWTH:.0%}"
    )
    for name, metric in METRICS.items():
        before, now = mean_of(early, metric), mean_of(late, metric)
        growth = (now - before) / before if before else float("nan")
        ok = growth < GOAL_GROWTH
        met = met and ok
        unit = UNITS.get(name, "")
        say(
            f"  {name:<12} {before:10.3f}{unit} -> {now:10.3f}{unit}  {growth:+7.2%}  "
            + ("ok" if ok else "OVER GOAL")
        )
    disturbed = [p for p in early + late if p.other_cores > DISTURBED]
    if disturbed:
        say(
            f"  (other work used over {DISTURBED} cores in {len(disturbed)} of those samples: the CPU row "
            "measures the machine as much as the server; run on a quiet machine)"
        )

    say("")
    for segment in soak.segments:
        say(
            f"recording segment {segment.number}: {segment.state}, {segment.seconds:.1f} s, "
            f"{segment.bytes / MIB:.1f} MiB encrypted ({segment.end_reason})"
        )
    if not soak.segments or soak.segments[0].seconds < args.duration:
        soak.problems.append("the recording did not last the whole run")
    if any(segment.state != "complete" for segment in soak.segments):
        soak.problems.append("a recording segment is not complete")
    if soak.consent_expired:
        # aioice gives each consent check (RFC 7675) 0.5 s and no retransmission, and ends the
        # connection after six misses in a row (aiortc/aioice#58): a peer whose loop lags that long
        # for 30 s, as on a machine the load generator saturates, is dropped.
        busiest = max((p.machine_cores for p in soak.points), default=0.0)
        soak.problems.append(
            f"{soak.consent_expired} of the server's ICE connections lost consent ('Consent to send expired' "
            f"in its log; aioice waits 0.5 s for each check, six misses end the call); the machine was "
            f"at most {busiest:.2f} of {CORES} cores busy"
        )
    if soak.log_errors:
        soak.problems.append(
            f"{len(soak.log_errors)} error entries in the server's log: {soak.log_errors[:3]}"
        )
    for problem in soak.problems:
        say(f"PROBLEM: {problem}")
    say(f"goal (growth under {GOAL_GROWTH:.0%} after warm-up): {'met' if met else 'NOT met'}")
    if soak.problems:
        say(f"something went wrong; the server's log and data are kept in {soak.workdir}")
        return 3
    if soak.workdir is not None:
        shutil.rmtree(soak.workdir)  # a passing run's recording is no use to anyone
    return 0 if met else 1


def say(line: str) -> None:
    print(line, flush=True)


# ---------------------------------------------------------------------------------------------
# Command line


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sessions", type=int, default=10, help="concurrent 1:1 calls (one recorded)")
    parser.add_argument("--duration", type=float, default=600.0, help="seconds from t = 0, warm-up included")
    parser.add_argument("--warmup", type=float, default=60.0, help="seconds left out of the growth")
    parser.add_argument("--window", type=float, default=60.0, help="seconds per table row and growth window")
    parser.add_argument("--every", type=float, default=5.0, help="seconds between samples")
    parser.add_argument("--video-bps", type=int, default=1_200_000, help="senders' VP8 bitrate")
    parser.add_argument(
        "--server-nice",
        type=int,
        default=-15,
        help="niceness of the server (as bench_relay: its participants share the machine; 0 for none)",
    )
    parser.add_argument(
        "--participant-nice",
        type=int,
        default=-10,
        help="niceness of the participant processes (as bench_record --loop-lag: below the server's, so "
        "other work on a shared machine does not starve the load; 0 to leave them be)",
    )
    parser.add_argument(
        "--wait-for-quiet",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="first wait up to this long for other work on the machine to calm down (0: do not wait)",
    )
    args = parser.parse_args(argv)
    if args.sessions < 1:
        parser.error("--sessions must be at least 1")
    if not 0.5 <= args.every <= args.window / 2:
        parser.error("--every must be between 0.5 s and half of --window")
    if args.warmup < 0 or args.duration < args.warmup + 2 * args.window:
        parser.error("--duration must cover --warmup and two --window (the early and the late one)")
    if args.duration > MAX_DURATION:
        # The calls are 60-minute sessions, which the server closes link_grace_minutes (120) after
        # their scheduled end.
        parser.error(f"--duration must be at most {MAX_DURATION:g} s")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, on_sigterm)
    say(
        f"soak: {git_version()}, {CORES} cores; {args.sessions} 1:1 call(s) of light participants (VP8 "
        f"640x480@30 at {args.video_bps // 1000} kbps + Opus each way), one recorded; {args.duration:g} s, "
        f"warm-up {args.warmup:g} s, window {args.window:g} s, a sample every {args.every:g} s; server at "
        f"nice {args.server_nice}, participants at nice {args.participant_nice}"
    )
    media = encode_media(args.video_bps)
    if args.wait_for_quiet > 0:
        wait_for_quiet("[soak]", args.wait_for_quiet)
    say(f"before the run, work this run did not start kept {busy_cores(2.0):.2f} of {CORES} cores busy")
    return report(args, run(args, media))


if __name__ == "__main__":
    raise SystemExit(main())
