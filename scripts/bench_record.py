"""Recording benchmark: the recorder's CPU per recorded participant, and how fast a withdrawal stops it.

One live `vsession serve` (pass-through relay, loopback ICE) and a 1:1 call whose two
participants run in this process: 640x480@30 VP8 (a moving test pattern with sensor-like noise,
from scripts/relay_load.py) plus Opus. The server's CPU comes from /proc/<pid>/stat, so the
participants' own encoding does not count.

1. Baseline: the call for `--seconds` without recording; server CPU in cores.
2. Recording: both consent; the same window while the recorder writes; server CPU again.
   Recorder CPU per recorded participant = (recording - baseline) / 2; the ratio is
   recording : baseline, both measured in this run.
3. Cut-off: `--withdrawals` times: ask again, accept, record ~2 s, withdraw. The server writes,
   in each segment's `recording.stop` audit entry, when its gate closed and when it wrote its last
   packet; the client notes when it sent the withdrawal. Reported: withdrawal sent -> gate closed,
   and gate closed - last packet written (a packet written after the gate closed would be > 0).

Loop lag (--loop-lag): the event loop that carries every call's media must never block (issue 10:
p99 <= 5 ms). One `vsession serve` (pass-through relay, recording on, at nice --server-nice, or
with --server-rt under SCHED_FIFO) runs its own lag monitor (vsession/looplag.py: a timer, how late
it wakes; here every --sample-ms, 20 ms, rather than the server's usual 100 ms) with its log window
set to --window seconds; the bench reads the monitor's entries from the server's log, so the
figures are measured inside the server process. The baseline for lag is the floor: a bare asyncio
loop in its own process at the server's priority, sampling the same way all run long; its p99/max
over each window is what the machine's scheduler (and on a VM the hypervisor) costs any loop.
Three windows in one run:
  1. 0 sessions: the server idle, a therapist enrolled;
  2. 4 1:1 sessions (--sessions), not recorded: 8 participant processes under bench_relay's light
     load (scripts/replay_media.py: VP8 640x480@30 at --video-bps and Opus, encoded once by this
     process and replayed; received frames are counted, not decoded);
  3. the same sessions recorded: every therapist asks, every client accepts, 4 segments written.
Each window is one whole monitor window that begins after the phase is set up and warmed up.
Reported per window: loop lag p50/p99/max, the floor's p99/max, server CPU (cores, from /proc) and
RSS, both also as a ratio to the 0-session window, the receivers' video fps, and the machine's busy
cores with the share that was neither the server nor the participants ("other": a shared machine's
noise).
Loop lag counts every delay in waking the loop, the scheduler's too: on a machine the participants
and other work keep busy, a server at nice -15 still waits for a CPU now and then. --server-rt N
runs it at real-time priority N instead (SCHED_FIFO, via chrt; root), which takes the scheduler
out of the figures and leaves what the server itself does: its own blocking and its own threads.
The participants run at nice --participant-nice (-10), so other work cannot starve the load; a
window whose receivers got under 27 fps on average is marked, and then its lag counts for nothing.
On a VM, time the host takes from the guest (steal) still shows as lag.

Usage: .venv/bin/python scripts/bench_record.py [--seconds 10] [--warmup 3] [--withdrawals 5]
       .venv/bin/python scripts/bench_record.py --loop-lag [--sessions 4] [--window 30]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from aiortc import AudioStreamTrack

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

# Imported as bench_relay imports them (this folder is on sys.path when a script here runs), so the
# replayed tracks are the very classes relay_load's client looks for.
from bench_common import git_version, on_sigterm  # noqa: E402
from bench_sampling import CORES, Sample, busy_cores, cpu_seconds, rss_bytes, take_sample, wait_for_quiet  # noqa: E402
from bench_step import FELL_BEHIND  # noqa: E402
from bench_targets import prepare_sessions  # noqa: E402
from relay_load import Clip, EncodedCallClient, ParticipantSpec, StampedVideoTrack, pin_video_bitrate  # noqa: E402
from replay_media import EncodedMedia, PacketTally, ReplayAudioTrack, ReplayVideoTrack, encode_media  # noqa: E402

from tests.support.call_client import CallClient  # noqa: E402
from tests.support.call_server import prepare_call, start_call_server  # noqa: E402
from tests.support.live_server import LiveServer, start_server  # noqa: E402
from vsession.looplag import LagFigures, summarise  # noqa: E402
from vsession.recording import age  # noqa: E402


async def server_cores(pid: int, seconds: float) -> float:
    start_cpu, start = cpu_seconds(pid), time.monotonic()
    await asyncio.sleep(seconds)
    return (cpu_seconds(pid) - start_cpu) / (time.monotonic() - start)


def stop_entries(db_path: Path) -> list[dict]:
    with closing(sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)) as db:
        rows = db.execute(
            "SELECT details FROM audit_log WHERE action = 'recording.stop' ORDER BY seq"
        ).fetchall()
    return [json.loads(r[0]) for r in rows]


async def consent_round(therapist: CallClient, client: CallClient, first: bool) -> None:
    before = len(client.messages)
    await therapist.send({"type": "record", "action": "request" if first else "ask_again"})
    await client.wait_for(lambda: any(m.get("type") == "consent_prompt" for m in client.messages[before:]))
    prompt = client.last("consent_prompt")
    assert prompt is not None
    await client.send(
        {"type": "consent", "request": prompt["request"], "prompt": prompt["prompt"], "answer": "accept"}
    )
    await client.wait_for(lambda: (client.last("recording") or {}).get("state") == "recording")


async def run(args: argparse.Namespace) -> None:
    pin_video_bitrate(args.video_bps)
    clip = Clip()
    workdir = Path(tempfile.mkdtemp(prefix="vsession-bench-record-"))
    _, recipient = age.generate_identity()
    server = start_call_server(workdir, f'recording_recipient = "{recipient}"', 'relay = "passthrough"')
    pid = server.process.pid
    therapist = client = None
    try:
        call = await prepare_call(server, clients=1)
        (turl, theaders), (curl, cheaders) = call.therapist_ws(), call.client_ws(0)
        therapist = CallClient(
            turl, theaders, {"camera": StampedVideoTrack(clip), "microphone": AudioStreamTrack()}
        )
        client = CallClient(
            curl, cheaders, {"camera": StampedVideoTrack(clip), "microphone": AudioStreamTrack()}
        )
        await therapist.join()
        await client.join()
        await therapist.wait_for(
            lambda: therapist.frames[("s1", "camera")] > 30 and client.frames[("t", "camera")] > 30
        )
        await asyncio.sleep(args.warmup)

        rss_idle = rss_bytes(pid)
        baseline = await server_cores(pid, args.seconds)
        await consent_round(therapist, client, first=True)
        await asyncio.sleep(args.warmup)
        recording = await server_cores(pid, args.seconds)
        rss_recording = rss_bytes(pid)

        sent_at: list[float] = []
        for round_ in range(args.withdrawals):
            if round_:
                await consent_round(therapist, client, first=False)
            await asyncio.sleep(2.0)
            sent_at.append(time.time())
            await client.send({"type": "withdraw"})
            await client.wait_for(lambda: (client.last("recording") or {}).get("state") != "recording")
        await asyncio.sleep(0.5)  # the last segment's stop entry is written as it finishes
        stops = stop_entries(server.data_dir / "vsession.sqlite3")[-args.withdrawals :]
    finally:
        for peer in (therapist, client):
            if peer is not None:
                await peer.close()
        server.stop()

    to_gate = [(s["gate_closed_unix"] - t) * 1000 for s, t in zip(stops, sent_at, strict=True)]
    after_gate = [(s["last_packet_unix"] - s["gate_closed_unix"]) * 1000 for s in stops]
    per_participant = (recording - baseline) / 2
    rows = [
        ("server CPU, 1:1 call, not recording", f"{baseline:.3f} cores"),
        ("server CPU, 1:1 call, recording", f"{recording:.3f} cores"),
        ("ratio recording : baseline", f"{recording / baseline:.2f}"),
        (
            "recorder CPU per recorded participant",
            f"{per_participant:.3f} cores ({per_participant:.1%} of a core)",
        ),
        ("server RSS, call / recording", f"{rss_idle / 2**20:.1f} / {rss_recording / 2**20:.1f} MiB"),
        (
            "withdrawal sent -> gate closed",
            f"p50 {statistics.median(to_gate):.1f} ms, max {max(to_gate):.1f} ms (n={len(to_gate)})",
        ),
        # A packet written after the gate closed would show as > 0.
        (
            "last packet written - gate closed",
            f"max {max(after_gate):.1f} ms, p50 {statistics.median(after_gate):.1f} ms",
        ),
    ]
    for label, value in rows:
        print(f"{label:<40} {value}")


# ---------------------------------------------------------------------------------------------
# Loop lag (--loop-lag)

LAG_MESSAGE = "event loop lag"  # vsession/looplag.py's log line
# `vsession serve`, with the lag monitor's window (vsession.looplag.LOG_SECONDS) and sampling
# interval (INTERVAL) set from the first two arguments: the monitor is the server's own, only how
# often it samples and reports differs.
SERVE_WITH_WINDOW = (
    "import sys; from vsession import looplag; looplag.LOG_SECONDS = float(sys.argv.pop(1)); "
    "looplag.INTERVAL = float(sys.argv.pop(1)); "
    "from vsession.cli import main; raise SystemExit(main())"
)
# The floor: a bare asyncio loop that does nothing but sample its own lag the same way, at the
# server's priority, one line "<monotonic time> <lag ms>" per sample. What it sees (the machine's
# and the hypervisor's scheduling) the server cannot do better than.
FLOOR = (
    "import asyncio, sys, time\n"
    "async def main(interval):\n"
    "    while True:\n"
    "        asleep = time.monotonic()\n"
    "        await asyncio.sleep(interval)\n"
    "        now = time.monotonic()\n"
    "        print(f'{now:.6f} {max(0.0, (now - asleep - interval) * 1000):.3f}', flush=True)\n"
    "asyncio.run(main(float(sys.argv[1])))"
)


@dataclass
class LagWindow:
    label: str
    lag: dict[str, Any]  # the monitor's log entry: p50_ms, p99_ms, max_ms, samples
    before: Sample
    after: Sample
    rss: int
    fps: list[float] = field(default_factory=list)  # per receiver, filled in at the end
    floor: LagFigures | None = None  # the bare loop's lag over the same time, filled in at the end

    @property
    def seconds(self) -> float:
        return self.after.time - self.before.time

    @property
    def server_cores(self) -> float:
        return (self.after.server_cpu - self.before.server_cpu) / self.seconds

    @property
    def load_cores(self) -> float:
        return (self.after.load_cpu - self.before.load_cpu) / self.seconds

    @property
    def machine_cores(self) -> float:
        (busy0, total0), (busy1, total1) = self.before.machine, self.after.machine
        return CORES * (busy1 - busy0) / max(1, total1 - total0)


class LagLog:
    """The lag monitor's entries in the server's log, as they are written."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._offset = 0
        self._partial = ""
        self._entries: list[dict[str, Any]] = []

    def _read(self) -> None:
        with self._path.open(encoding="utf-8", errors="replace") as handle:
            handle.seek(self._offset)
            text = handle.read()
            self._offset = handle.tell()
        *lines, self._partial = (self._partial + text).split("\n")
        for line in lines:
            with contextlib.suppress(ValueError):
                entry = json.loads(line)
                if isinstance(entry, dict) and entry.get("msg") == LAG_MESSAGE:
                    self._entries.append(entry)

    def skip(self) -> None:
        """Forget the entries written so far."""
        self._read()
        self._entries.clear()

    def next(self, patience: float) -> dict[str, Any]:
        """The oldest entry not yet returned or skipped; waits for one."""
        deadline = time.monotonic() + patience
        while True:
            self._read()
            if self._entries:
                return self._entries.pop(0)
            if time.monotonic() > deadline:
                raise RuntimeError(f"no '{LAG_MESSAGE}' entry in {self._path} for {patience:g} s")
            time.sleep(0.05)


def measure_lag_window(
    label: str, log: LagLog, server: LiveServer, participants: Participants, window: float
) -> LagWindow:
    """One whole monitor window: from the next boundary to the one after."""
    log.skip()
    log.next(window + 10)
    before = take_sample(server.process.pid, participants.pids())
    entry = log.next(window + 10)
    after = take_sample(server.process.pid, participants.pids())
    result = LagWindow(label, entry, before, after, rss_bytes(server.process.pid))
    say(
        f"  {label}: lag p50 {entry['p50_ms']} ms, p99 {entry['p99_ms']} ms, max {entry['max_ms']} ms "
        f"({entry['samples']} samples); server {result.server_cores:.3f} cores"
    )
    return result


@dataclass
class Participant:
    spec: ParticipantSpec
    process: BaseProcess
    control: Connection
    video: list[float] = field(default_factory=list)  # arrival times of the other party's frames


class Participants:
    """The participant processes, one per therapist or client; stopped however the run ends."""

    # Each process's entry point (spec, control pipe, media); a subclass may run another.
    entry_point: Callable[[ParticipantSpec, Connection, EncodedMedia], None]

    def __init__(self, media: EncodedMedia, nice: int) -> None:
        self._ctx = multiprocessing.get_context("spawn")
        self._media = media
        self._nice = nice
        self.members: list[Participant] = []

    def start(self, spec: ParticipantSpec) -> None:
        ours, theirs = self._ctx.Pipe()
        process = self._ctx.Process(
            target=type(self).entry_point, args=(spec, theirs, self._media), name=spec.name, daemon=True
        )
        process.start()
        theirs.close()
        if self._nice and process.pid is not None:
            os.setpriority(os.PRIO_PROCESS, process.pid, self._nice)
        self.members.append(Participant(spec, process, ours))

    def pids(self) -> list[int]:
        return [m.process.pid for m in self.members if m.process.pid is not None]

    def tell(self, command: str) -> None:
        for member in self.members:
            member.control.send(command)

    def wait_all(self, reply: str, patience: float) -> None:
        """Until every participant has said `reply`; raises with what went wrong otherwise."""
        pending = list(self.members)
        deadline = time.monotonic() + patience
        while pending and time.monotonic() < deadline:
            for conn in wait([m.control for m in pending], timeout=max(0.0, deadline - time.monotonic())):
                member = next(m for m in pending if m.control is conn)
                try:
                    message = conn.recv()
                except EOFError:
                    raise RuntimeError(f"{member.spec.name} exited (its stderr says why)") from None
                if message[0] == "error":
                    raise RuntimeError(f"{member.spec.name}: {message[1]}")
                if message[0] == reply:
                    pending.remove(member)
        if pending:
            raise RuntimeError(f"never {reply}: {[m.spec.name for m in pending]}")

    def stop(self) -> None:
        """Leave the calls, collect what each received, end every process."""
        for member in self.members:
            with contextlib.suppress(OSError):
                member.control.send("stop")
        deadline = time.monotonic() + 20
        for member in self.members:
            with contextlib.suppress(EOFError, OSError):
                while member.control.poll(max(0.0, deadline - time.monotonic())):
                    message = member.control.recv()
                    if message[0] == "stopped":
                        member.video = message[1]
                        break
        for member in self.members:
            member.process.join(timeout=max(0.1, deadline - time.monotonic()))
            if member.process.is_alive():
                member.process.kill()
                member.process.join()
            member.control.close()


def recorded_participant_process(spec: ParticipantSpec, control: Connection, media: EncodedMedia) -> None:
    """Process entry point: a light participant (relay_load's) that also takes part in consent."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when participants stop
    asyncio.run(_recorded_participant(spec, control, media))


Participants.entry_point = recorded_participant_process


async def _recorded_participant(spec: ParticipantSpec, control: Connection, media: EncodedMedia) -> None:
    loop = asyncio.get_running_loop()
    commands: asyncio.Queue[str] = asyncio.Queue()

    def on_control() -> None:
        try:
            commands.put_nowait(control.recv())
        except (EOFError, OSError):  # the parent is gone
            loop.remove_reader(control.fileno())
            commands.put_nowait("stop")

    tally = PacketTally()

    def on_frame(peer: str, source: str, packet: Any) -> None:
        if peer == spec.other:
            tally.on_packet("video" if source == "camera" else "audio", packet)

    tracks = {"camera": ReplayVideoTrack(media), "microphone": ReplayAudioTrack(media)}
    client = EncodedCallClient(spec.ws_url, spec.headers, tracks, on_frame=on_frame)
    loop.add_reader(control.fileno(), on_control)
    try:
        await client.join()
        await client.wait_for(lambda: bool(tally.video) and bool(tally.audio), patience=60)
        control.send(("ready",))
        while (command := await commands.get()) != "stop":
            if command == "record":
                await consent(client, therapist=spec.other != "t")
                control.send(("recording",))
    except Exception as exc:  # reported to the parent, which stops the run
        with contextlib.suppress(OSError):
            control.send(("error", repr(exc)))
        await commands.get()  # until told to stop
    finally:
        loop.remove_reader(control.fileno())
        with contextlib.suppress(OSError):
            control.send(("stopped", tally.video))
        with contextlib.suppress(Exception):
            await asyncio.wait_for(client.close(), 5)


async def consent(client: CallClient, therapist: bool) -> None:
    """The therapist asks, the client accepts; both see the indicator say "recording"."""
    if therapist:
        await client.send({"type": "record", "action": "request"})
    else:
        await client.wait_for(lambda: client.last("consent_prompt") is not None, patience=60)
        prompt = client.last("consent_prompt")
        assert prompt is not None
        answer = {"request": prompt["request"], "prompt": prompt["prompt"], "answer": "accept"}
        await client.send({"type": "consent", **answer})
    await client.wait_for(lambda: (client.last("recording") or {}).get("state") == "recording", patience=60)


def at_server_priority(command: list[str], args: argparse.Namespace) -> list[str]:
    if args.server_rt:
        return ["chrt", "--fifo", str(args.server_rt), *command]
    if args.server_nice:
        return ["nice", "-n", str(args.server_nice), *command]
    return command


def start_lag_server(workdir: Path, recipient: str, args: argparse.Namespace) -> LiveServer:
    config = workdir / "vsession.toml"
    settings = ["ice_loopback = true", 'relay = "passthrough"', f'recording_recipient = "{recipient}"']
    config.write_text("\n".join(settings) + "\n")
    interval = str(args.sample_ms / 1000)
    command = at_server_priority(
        [sys.executable, "-c", SERVE_WITH_WINDOW, str(args.window), interval, "serve"], args
    )
    return start_server(
        workdir / "data", "--config", str(config), command=command, log=workdir / "server.log"
    )


def start_floor(workdir: Path, args: argparse.Namespace) -> tuple[subprocess.Popen[bytes], Path]:
    out = workdir / "floor.txt"
    command = at_server_priority([sys.executable, "-c", FLOOR, str(args.sample_ms / 1000)], args)
    with out.open("wb") as handle:
        return subprocess.Popen(command, stdout=handle), out


def floor_figures(out: Path, start: float, end: float) -> LagFigures:
    lags = []
    for line in out.read_text().splitlines():
        with contextlib.suppress(ValueError):
            at, lag = map(float, line.split())
            if start <= at < end:
                lags.append(lag)
    return summarise(lags)


def recording_states(db_path: Path) -> list[str]:
    with closing(sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)) as db:
        return [row[0] for row in db.execute("SELECT state FROM recordings ORDER BY started_at")]


def run_loop_lag(args: argparse.Namespace) -> int:
    signal.signal(signal.SIGTERM, on_sigterm)  # unwinds through the finally that stops every process
    say(
        f"bench_record --loop-lag: {git_version()}, {CORES} cores; {args.sessions} 1:1 sessions of light "
        f"participants (VP8 640x480@30 at {args.video_bps // 1000} kbps + Opus each way), monitor window "
        f"{args.window:g} s, warm-up {args.warmup:g} s, server "
        + (f"at real-time priority {args.server_rt}" if args.server_rt else f"at nice {args.server_nice}")
    )
    media = encode_media(args.video_bps)
    if args.wait_for_quiet > 0:
        wait_for_quiet("[loop lag]", args.wait_for_quiet)
    say(f"before the run, work this run did not start kept {busy_cores(2.0):.2f} of {CORES} cores busy")
    with tempfile.TemporaryDirectory(prefix="vsession-bench-lag-") as tmp:
        windows, states = lag_windows(args, media, Path(tmp))
    report_loop_lag(args, windows, states)
    return 0


def lag_windows(
    args: argparse.Namespace, media: EncodedMedia, workdir: Path
) -> tuple[list[LagWindow], list[str]]:
    """The three windows, and the states of the recordings made."""
    _, recipient = age.generate_identity()
    server = start_lag_server(workdir, recipient, args)
    floor, floor_out = start_floor(workdir, args)
    log = LagLog(workdir / "server.log")
    participants = Participants(media, args.participant_nice)
    windows: list[LagWindow] = []
    try:
        specs = prepare_sessions(server, args.sessions)
        time.sleep(args.warmup)
        windows.append(measure_lag_window("0 sessions", log, server, participants, args.window))

        for spec in specs:
            participants.start(spec)
        participants.wait_all("ready", patience=60 + 5 * len(specs))
        time.sleep(args.warmup)
        label = f"{args.sessions} sessions, not recorded"
        windows.append(measure_lag_window(label, log, server, participants, args.window))

        participants.tell("record")
        participants.wait_all("recording", patience=60)
        time.sleep(args.warmup)
        label = f"{args.sessions} sessions, recorded"
        windows.append(measure_lag_window(label, log, server, participants, args.window))
    finally:
        participants.stop()
        server.stop()
        floor.terminate()
        floor.wait()
    for window in windows:
        window.floor = floor_figures(floor_out, window.before.time, window.after.time)
    for window in windows[1:]:  # the first has no participants yet
        window.fps = [
            sum(window.before.time <= t < window.after.time for t in m.video) / window.seconds
            for m in participants.members
        ]
    states = recording_states(server.data_dir / "vsession.sqlite3")
    return windows, states


def report_loop_lag(args: argparse.Namespace, windows: list[LagWindow], states: list[str]) -> None:
    base = windows[0]
    headers = ["window", "lag p50", "p99", "max", "n", "floor p99", "max"]
    headers += ["server cores", "x base", "RSS MiB", "x base"]
    headers += ["fps min/mean", "participants", "machine", "other"]
    rows = []
    for w in windows:
        other = max(0.0, w.machine_cores - w.server_cores - w.load_cores)
        fps = f"{min(w.fps):.1f}/{statistics.mean(w.fps):.1f}" if w.fps else "-"
        if w.fps and statistics.mean(w.fps) < FELL_BEHIND:
            fps += " (fell behind)"
        rows.append(
            [
                w.label,
                f"{w.lag['p50_ms']:.2f} ms",
                f"{w.lag['p99_ms']:.2f} ms",
                f"{w.lag['max_ms']:.2f} ms",
                str(w.lag["samples"]),
                f"{w.floor.p99_ms:.2f} ms" if w.floor else "-",
                f"{w.floor.max_ms:.2f} ms" if w.floor else "-",
                f"{w.server_cores:.3f}",
                f"{w.server_cores / base.server_cores:.1f}" if base.server_cores else "-",
                f"{w.rss / 2**20:.1f}",
                f"{w.rss / base.rss:.2f}",
                fps,
                f"{w.load_cores:.2f}",
                f"{w.machine_cores:.2f}",
                f"{other:.2f}" + (" (disturbed)" if other > 0.25 else ""),
            ]
        )
    widths = [max(len(str(c)) for c in column) for column in zip(headers, *rows, strict=True)]
    for line in [headers, *rows]:
        say("  ".join(str(c).ljust(n) for c, n in zip(line, widths, strict=True)))
    recorded = windows[-1].lag["p99_ms"]
    if statistics.mean(windows[-1].fps or [0.0]) < FELL_BEHIND:
        say(
            f"the receivers fell behind while recorded: the load was not delivered, p99 {recorded:.2f} ms "
            "says nothing about it; run again on a quieter machine"
        )
        return
    say(
        f"goal p99 <= 5 ms with {args.sessions} recorded sessions: "
        f"{'met' if recorded <= 5 else 'NOT met'} ({recorded:.2f} ms); recordings by state: "
        + ", ".join(f"{states.count(state)} {state}" for state in sorted(set(states)))
    )


def say(line: str) -> None:
    print(line, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=10.0, help="each CPU measurement window")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--withdrawals", type=int, default=5)
    parser.add_argument("--video-bps", type=int, default=1_200_000, help="senders' VP8 bitrate")
    parser.add_argument("--loop-lag", action="store_true", help="the loop-lag mode (see above)")
    parser.add_argument("--sessions", type=int, default=4, help="--loop-lag: recorded 1:1 sessions")
    parser.add_argument("--window", type=float, default=30.0, help="--loop-lag: seconds per lag window")
    parser.add_argument(
        "--sample-ms",
        type=float,
        default=20.0,
        help="--loop-lag: how often the server's monitor and the bare floor loop sample (the server's "
        "own default is 100 ms; finer here, so a window's p99 rests on more samples)",
    )
    parser.add_argument(
        "--server-nice",
        type=int,
        default=-15,
        help="--loop-lag: niceness of the server (as bench_relay: its participants share the machine; "
        "0 to run it like everything else)",
    )
    parser.add_argument(
        "--server-rt",
        type=int,
        default=0,
        metavar="PRIORITY",
        help="--loop-lag: run the server under SCHED_FIFO at this priority (1-99) instead of nice",
    )
    parser.add_argument(
        "--participant-nice",
        type=int,
        default=-10,
        help="--loop-lag: niceness of the participant processes (default -10, below the server's, so "
        "that other work on a shared machine does not starve the load; 0 to leave them be)",
    )
    parser.add_argument(
        "--wait-for-quiet",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="--loop-lag: first wait up to this long for other work on the machine to calm down",
    )
    args = parser.parse_args()
    if args.loop_lag:
        raise SystemExit(run_loop_lag(args))
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
