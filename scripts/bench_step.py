"""One benchmark step: a fresh server (vsession with one relay, or Janus), N 1:1 sessions on it,
2N participants plus the direct pair, a warm-up, then a measurement window. What it measured,
and the verdict by the criterion of issue 6: every receiver >= 29 fps and the server < 0.8 of a
core, over the window."""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, field
from multiprocessing.context import ForkServerContext
from pathlib import Path

from bench_common import mean, say
from bench_delay import delays
from bench_sampling import CORES, DISTURBED, MIB, Sample, niceness, rss_bytes, sample_window, wait_for_quiet
from bench_targets import start_target
from bench_workers import Load
from relay_load import Recording

FPS_FLOOR = 29.0  # issue 6: "keep >= 29 fps at every receiver"
FELL_BEHIND = 27.0  # mean fps below which a step's CPU no longer reflects the full load
CPU_CEILING = 0.8  # issue 6: "the server under 80% of one core per process"
SATURATED = 0.9  # the machine counts as saturated above this share of its cores


@dataclass
class StepResult:
    relay: str  # the target: a vsession relay name, or "janus"
    sessions: int
    load: str = "full"
    processes: int = 0  # participant processes, direct pair included
    server_nice: int = 0
    seconds: float = 0.0
    server_cores: float = 0.0
    load_cores: float = 0.0
    machine_cores: float = 0.0
    rss_idle: float = 0.0
    rss_during: float = 0.0
    fps: list[float] = field(default_factory=list)  # per receiver through the server
    audio_pps: list[float] = field(default_factory=list)
    sent_mbps: list[float] = field(default_factory=list)  # video, per sender
    received_mbps: list[float] = field(default_factory=list)  # everything on the transport, per receiver
    latency: list[float] = field(default_factory=list)  # video ms, all receivers through the server
    direct_latency: list[float] = field(default_factory=list)
    audio_latency: list[float] = field(default_factory=list)  # light load only
    direct_audio_latency: list[float] = field(default_factory=list)
    direct_fps: list[float] = field(default_factory=list)
    stamps_read: int = 0
    stamps_seen: int = 0
    problems: list[str] = field(default_factory=list)
    # light load only, per receiver through the server
    keyframes: list[int] = field(default_factory=list)
    frame_mbps: list[float] = field(default_factory=list)  # from the encoded frames' sizes
    keyframe_requests: list[int] = field(default_factory=list)  # per sender, whole step
    bad_frames: int = 0

    @property
    def cores_per_process(self) -> float | None:
        return self.load_cores / self.processes if self.processes else None

    @property
    def cpu_per_session(self) -> float:
        return self.server_cores / self.sessions

    @property
    def rss_per_session_mib(self) -> float:
        return (self.rss_during - self.rss_idle) / self.sessions / MIB

    @property
    def other_cores(self) -> float:
        """Busy cores that were neither the server nor the participants: other work on the machine
        (and the kernel), which disturbs every figure."""
        return max(0.0, self.machine_cores - self.server_cores - self.load_cores)

    @property
    def fps_min(self) -> float:
        return min(self.fps, default=0.0)

    @property
    def fell_behind(self) -> bool:
        """Receivers got clearly less than the 30 fps sent, not just a frame or two short."""
        return (mean(self.fps) or 0.0) < FELL_BEHIND

    @property
    def passes(self) -> bool:
        """Issue 6's criterion as written, nothing rounded: all 2N receivers reported, each got
        >= 29 fps, and the server used < 0.8 of a core."""
        receivers = 2 * self.sessions
        return len(self.fps) == receivers and self.fps_min >= FPS_FLOOR and self.server_cores < CPU_CEILING

    def failures(self) -> list[str]:
        """Every part of the criterion this step missed, in words."""
        missed = []
        if len(self.fps) != 2 * self.sessions:
            missed.append(f"{len(self.fps)} of {2 * self.sessions} receivers reported")
        if self.fps_min < FPS_FLOOR:
            missed.append(f"fps min {self.fps_min:.2f} < {FPS_FLOOR:g}")
        if self.server_cores >= CPU_CEILING:
            missed.append(f"server at {self.server_cores:.3f} cores >= {CPU_CEILING}")
        return missed

    def limited_by(self) -> str:
        """What a failing step ran out of: "server", "load generator", "other work" or "relay"."""
        if self.server_cores >= CPU_CEILING:
            return "server"
        if self.machine_cores < SATURATED * CORES:
            return "relay"  # receivers fell behind with CPU to spare
        return "other work" if self.other_cores > DISTURBED else "load generator"

    def limit(self) -> str:
        """Why a failing step failed, in words."""
        why = "; ".join(self.failures())
        limited_by = self.limited_by()
        if limited_by == "server":
            return f"{why} (limit: the server)"
        if limited_by == "relay":
            busy = f"{self.machine_cores:.2f} of {CORES} cores busy"
            return f"{why}, the machine not saturated ({busy}; limit: the relay)"
        return (
            f"{why}, the machine saturated ({self.machine_cores:.2f} of {CORES} cores busy: participants "
            f"{self.load_cores:.2f}, other work {self.other_cores:.2f}; limit: the {limited_by})"
        )


def run_step(
    ctx: ForkServerContext,
    target_name: str,
    sessions: int,
    args: argparse.Namespace,
    workdir: Path,
) -> StepResult:
    tag = f"[{target_name} N={sessions}]"
    if args.wait_for_quiet > 0:
        wait_for_quiet(tag, args.wait_for_quiet)
    target = start_target(
        target_name, sessions, workdir / f"{target_name}-{sessions}", args.server_nice, args.shim
    )
    result = StepResult(target_name, sessions, load=args.load, server_nice=niceness(target.pid))
    try:
        time.sleep(1.0)  # let the sign-in and scheduling traffic settle before the idle reading
        result.rss_idle = rss_bytes(target.pid)
        with Load(ctx, args.video_kbps * 1000, args.media) as load:
            started = time.monotonic()
            for spec in target.specs:
                load.start_participant(spec)
            if args.direct:
                load.start_direct_pair()
            missing = load.wait_ready(20 + 2.0 * len(load.workers), alive=target.alive)
            flowing = (
                f"NOT receiving: {missing}"
                if missing
                else f"all receiving after {time.monotonic() - started:.1f} s"
            )
            say(
                f"{tag} server at nice {result.server_nice}, {len(load.workers)} participant processes, "
                f"{flowing}; warm-up {args.warmup:g} s"
            )
            result.problems += [f"{name} never received media" for name in missing]
            time.sleep(args.warmup)
            before, after, rss = sample_window(target.pid, target.alive, load.pids(), args.seconds)
            load.collect()
            recordings = {w.name: (w.recording, w.direct) for w in load.workers}
            result.processes = len(load.workers)
        summarise(result, before, after, rss, recordings)
        if not target.alive():
            result.problems.append(f"the server exited\n{target.log_tail()}")
    finally:
        target.stop()
    return result


def partner(name: str) -> str:
    """The participant whose media `name` receives: the other party of its session."""
    session, _, role = name.rpartition("/")
    return f"{session}/" + {"t": "s1", "s1": "t", "a": "b", "b": "a"}[role]


def summarise(
    result: StepResult,
    before: Sample,
    after: Sample,
    rss: list[int],
    recordings: dict[str, tuple[Recording | None, bool]],
) -> None:
    t0, t1 = before.time, after.time
    wall = t1 - t0
    result.seconds = wall
    result.server_cores = (after.server_cpu - before.server_cpu) / wall
    result.load_cores = (after.load_cpu - before.load_cpu) / wall
    busy, total = (a - b for a, b in zip(after.machine, before.machine, strict=True))
    result.machine_cores = CORES * busy / total if total else 0.0
    result.rss_during = sum(rss) / len(rss) if rss else result.rss_idle
    for name, (recording, direct) in recordings.items():
        if recording is None:
            result.problems.append(f"{name}: no report")
            continue
        if recording.error:
            result.problems.append(f"{name}: {recording.error}")
        sender = recordings.get(partner(name), (None, direct))[0]
        video, audio = stamped_delays(recording, t0, t1), []
        if result.load == "light" and sender is not None:
            video = delays(sender.sent, recording.arrived, "video", t0, t1)
            audio = delays(sender.sent, recording.arrived, "audio", t0, t1)
        fps = count_between(recording.video, t0, t1) / wall
        if direct:
            result.direct_latency += video
            result.direct_audio_latency += audio
            result.direct_fps.append(fps)
            continue
        result.latency += video
        result.audio_latency += audio
        result.fps.append(fps)
        if fps < FPS_FLOOR:
            result.problems.append(f"{name} received {fps:.1f} fps")
        result.audio_pps.append(count_between(recording.audio, t0, t1) / wall)
        if result.load == "light":
            result.stamps_read += len(video)  # identified frames, as a share of those received
            result.stamps_seen += count_between(recording.video, t0, t1)
        else:
            result.stamps_read += len(video)
            result.stamps_seen += len(video) + count_between(recording.unreadable, t0, t1)
        for index, target in ((1, result.sent_mbps), (2, result.received_mbps)):
            rate = stats_rate(recording.stats, index, t0, t1)
            if rate is not None:
                target.append(rate)
        if result.load == "light":
            result.keyframes.append(count_between(recording.keyframes, t0, t1))
            result.frame_mbps.append(
                sum(n for at, n in recording.video_bytes if t0 <= at < t1) * 8 / wall / 1e6
            )
            result.keyframe_requests.append(recording.keyframe_requests)
            result.bad_frames += len(recording.bad)
            result.problems += [f"{name}: {bad}" for bad in recording.bad[:3]]


def stamped_delays(recording: Recording, t0: float, t1: float) -> list[float]:
    """The full load's video delays: the sender's clock read from each decoded frame."""
    return [ms for at, ms in recording.latency if t0 <= at < t1]


def count_between(times: list[float], t0: float, t1: float) -> int:
    return sum(1 for t in times if t0 <= t < t1)


def stats_rate(stats: list[tuple[float, int, int]], index: int, t0: float, t1: float) -> float | None:
    """Mbit/s of one byte counter between the first and last getStats samples inside the window."""
    inside = [s for s in stats if t0 <= s[0] <= t1]
    if len(inside) < 2 or inside[-1][0] <= inside[0][0]:
        return None
    first, last = inside[0], inside[-1]
    return (last[index] - first[index]) * 8 / (last[0] - first[0]) / 1e6
