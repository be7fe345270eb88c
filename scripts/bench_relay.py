#!/usr/bin/env python3
"""Benchmark the SFU relays (the `relay` setting), and with --peer janus Debian's Janus Gateway,
on one synthetic load, in one run.

For each target (a relay, or Janus) and each number N of concurrent 1:1 sessions, a step
(scripts/bench_step.py):
 1. starts a fresh server, so its CPU and memory belong to that step alone: `vsession serve`
    (ice_loopback on, `relay = "<name>"`), or Janus (scripts/janus_server.py);
 2. prepares N sessions of one seat each: for vsession it enrols a therapist, schedules them and
    admits each client over HTTP (tests/support/actors.py); for Janus it creates N VideoRoom rooms
    (scripts/janus_client.py). The server's RSS now is the idle baseline;
 3. starts 2N participant processes (therapist and client of each session, one OS process each,
    scripts/relay_load.py; on Janus each publishes and subscribes to the other), plus one direct
    aiortc pair that does not touch the server (scripts/bench_workers.py);
 4. waits until every participant receives the other's video and audio, warms up, then measures
    over a window (scripts/bench_sampling.py):
    - server CPU: utime+stime of the server process (all its threads) from /proc/<pid>/stat, as
      CPU-seconds per wall-second ("cores"), and per session;
    - server memory: mean VmRSS during the window, and (that - idle RSS) / N;
    - at every receiver: video frames/s and 20 ms audio frames/s, min and mean across receivers;
    - the participants' own CPU (all worker processes, direct pair included) and the whole
      machine's busy cores from /proc/stat, so the reader can see what the load generator costs;
      "other" = machine - server - participants is work this run did not start (on a shared
      machine, other people's tests), which disturbs every figure and is flagged above 0.25 cores.
With several targets, the steps go N by N, and at each N the targets take turns in alternating
order (vsession first at the first N, Janus first at the next), so a drift in the machine's load
does not always favour the same one.

The server runs at nice -15 (--server-nice), Janus too. The load generator shares the machine
with it only because this is a benchmark. Without the priority, a saturated machine gives the
server what the scheduler gives its one or two runnable threads among a dozen busy participant
threads: measured here, the decoding relay then got ~0.4 cores at N=2, fell to 5 fps and queued
seconds of video, so its CPU column measured the scheduler instead of the relay. With it, the
server gets what it asks for, as on a machine of its own; the receivers' fps show when the
participants run out of CPU instead.

Full load (--load full, the default without --peer): each participant live-encodes 640x480@30
VP8 at a pinned 1.2 Mbps (aiortc's encoder would start at 500 kbps and follow REMB; the workers
set its module defaults, min and max to --video-kbps, in the worker processes only), made of
FFmpeg's moving testsrc2 pattern plus temporal noise, and Opus from aiortc's AudioStreamTrack,
and decodes what it receives. Sent and received bitrates are measured from getStats and printed.
Delay: each sender stamps its clock (CLOCK_MONOTONIC, shared by all processes on Linux) into the
top rows of every frame; each receiver reads it after decoding. The age covers encode, network,
the server, the receiver's jitter buffer and decode. Video only: audio carries no stamp.

Light load (--load light, the default with --peer janus): the same streams reach the server, but
each participant replays VP8 and Opus that the parent encoded once at start-up (the video loop
has a single keyframe at its start, sent at start, on every PLI/FIR the sender gets, and once per
10 s loop; the audio is quiet noise, so every packet differs) and receives them without decoding,
counting encoded frames (scripts/replay_media.py, scripts/logged_replay.py). A participant then
costs a fraction of a full one, so N can go far enough to find the server's own limit. Delay,
video and audio: each sender logs when it hands each frame to aiortc, each receiver logs which
frame arrived when (told by its bytes), and the parent matches them (scripts/bench_delay.py).

Either way, the direct pair does the same per-process work under the same machine load with no
server in the path, and server-added delay is the difference of the percentiles (p50 through the
server - p50 direct, likewise p95), not a percentile of per-frame differences.

Verdict: a step passes when every receiver gets >= 29 fps and the server uses < 0.8 of a core
(issue 6's criterion, as written, nothing rounded). Capacity is the largest N that passes with
every smaller N measured also passing; a step that misses either half fails, and nothing is
projected. --capacity steps N through 1, 2, 3, 4, 6, 8, 12, 16, ... (light: 1, 2, 4, 6, 8, 10,
12, 14, 16, 20, ...) per target until a step fails. On 2 shared cores the participants can
saturate the machine before the server does; each failure says whether the server, the load
generator or other work hit the limit, and a limit other than the server makes the capacity a
lower bound for the server.

Janus (--peer janus) is Debian's package, used as installed: the bench installs nothing and
skips Janus, saying why, when /usr/bin/janus or gcc is missing.

Usage: .venv/bin/python scripts/bench_relay.py [--relays decoding,passthrough] [--sessions 1,2,4]
       [--seconds 15] [--warmup 5] [--load full|light] [--capacity [--max-sessions 16]]
       [--peer janus] [--wait-for-quiet 120]
Needs the runtime dependencies only (no pytest): the tests.support modules it imports are plain
HTTP and process helpers.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Sequence
from multiprocessing.context import ForkServerContext
from pathlib import Path

import aiortc
import av
from bench_common import REPO, git_version, on_sigterm, say
from bench_report import capacity_lines, comparison_table, latency_table, light_table, load_table, ratio_lines
from bench_sampling import CORES, DISTURBED, busy_cores
from bench_step import CPU_CEILING, FPS_FLOOR, StepResult, run_step
from bench_targets import JANUS, RelayUnavailable
from janus_server import SHIM, JanusUnavailable, build_shim
from logged_replay import with_distinct_audio
from replay_media import LOOP_SECONDS, encode_media

from vsession.config import Settings

CAPACITY_STEPS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64)
LIGHT_CAPACITY_STEPS = (1, 2, 4, 6, 8, 10, 12, 14, 16, 20, 24, 28, 32, 40, 48, 64)
MAX_SESSIONS = {"full": 16, "light": 48}
JANUS_SESSIONS = [1, 2, 4, 8, 16]  # issue 14's steps


def run(
    ctx: ForkServerContext, targets: list[str], steps: Sequence[int], args: argparse.Namespace, workdir: Path
) -> list[StepResult]:
    """Every step, N by N, the targets in alternating order; in capacity mode a target stops
    after its first failing step. A target that cannot run is reported and dropped."""
    results: list[StepResult] = []
    active = list(targets)
    for turn, sessions in enumerate(steps):
        for target in list(active) if turn % 2 == 0 else active[::-1]:  # copies: a target may drop out
            result = run_one(ctx, target, sessions, args, workdir)
            if result is None or (args.capacity and not result.passes):
                active.remove(target)
            if result is not None:
                results.append(result)
        if not active:
            break
    return results


def run_one(
    ctx: ForkServerContext, target: str, sessions: int, args: argparse.Namespace, workdir: Path
) -> StepResult | None:
    tag = f"[{target} N={sessions}]"
    try:
        result = run_step(ctx, target, sessions, args, workdir)
    except RelayUnavailable as exc:
        say(f"[{target}] relay {target!r} is not available: the server refused it ({exc}). Skipping it.")
        return None
    except Exception as exc:  # keep what the other steps measured
        say(f"{tag} step failed: {exc}")
        traceback.print_exc()
        return None
    say(
        f"{tag} server {result.server_cores:.2f} cores, "
        f"fps min {result.fps_min:.1f}, participants {result.load_cores:.2f} cores "
        f"({'-' if result.cores_per_process is None else f'{result.cores_per_process:.3f}'} per process), "
        f"machine {result.machine_cores:.2f}/{CORES} -> {'pass' if result.passes else 'FAIL'}"
    )
    if result.other_cores > DISTURBED:
        result.problems.append(
            f"other processes kept {result.other_cores:.2f} cores busy during the window: "
            "this step's figures are disturbed"
        )
    for problem in result.problems:
        say(f"{tag}   problem: {problem}")
    return result


def parse_list(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=(
            "Measure the SFU relays on one synthetic load of 1:1 sessions (640x480@30 VP8 at a pinned "
            "bitrate plus Opus, every participant in its own process). Per relay and N it prints server "
            "CPU (cores and per session), RSS per session, receiver fps min/mean, audio frames/s, latency "
            "through the server and over a direct pair, then ratios against the in-run baseline."
        ),
        epilog="Method, clock and criteria: see the docstring at the top of this file.",
    )
    parser.add_argument(
        "--relays",
        type=parse_list,
        default=None,
        help="comma-separated relay names, as the server's `relay` setting takes them; one the server "
        "refuses is reported and skipped (default: decoding,passthrough; with --peer janus, the "
        "server's default relay)",
    )
    parser.add_argument(
        "--sessions",
        type=lambda s: [int(n) for n in parse_list(s)],
        default=None,
        help="comma-separated numbers of concurrent 1:1 sessions, one step each (default: 1,2,4; "
        f"with --peer janus {','.join(map(str, JANUS_SESSIONS))})",
    )
    parser.add_argument("--seconds", type=float, default=15, help="measurement window per step (default: 15)")
    parser.add_argument(
        "--warmup",
        type=float,
        default=5,
        help="seconds after all media flows, before the window (default: 5)",
    )
    parser.add_argument(
        "--capacity",
        action="store_true",
        help=f"instead of --sessions, step N through {','.join(map(str, CAPACITY_STEPS[:8]))},... per relay "
        f"until a step fails (a receiver < {FPS_FLOOR:g} fps or the server >= {CPU_CEILING} core), "
        "and report the largest passing N",
    )
    parser.add_argument(
        "--max-sessions",
        type=int,
        default=None,
        help=f"upper bound for --capacity (default: {MAX_SESSIONS['full']}, "
        f"with --load light {MAX_SESSIONS['light']})",
    )
    parser.add_argument(
        "--load",
        choices=("full", "light"),
        default=None,
        help="full (default): every participant live-encodes and decodes its media (video delay from "
        "stamps in the picture); light (default with --peer janus): participants replay media encoded "
        "once at start-up and count encoded frames without decoding (video and audio delay from "
        "send and arrival logs), so that N can reach the server's limit rather than the load generator's",
    )
    parser.add_argument(
        "--peer",
        choices=(JANUS,),
        default=None,
        help="also run the same load against this other SFU in the same run, alternating order per N: "
        "janus is Debian's Janus Gateway, configured for loopback by scripts/janus/ (installs nothing)",
    )
    parser.add_argument(
        "--video-kbps", type=int, default=1200, help="pinned VP8 bitrate of every sender (default: 1200)"
    )
    parser.add_argument(
        "--wait-for-quiet",
        type=float,
        default=0,
        metavar="SECONDS",
        help=f"before each step, wait up to this long for other work on the machine to drop below "
        f"{DISTURBED} cores (default: 0, do not wait); the 'other' column shows what remained",
    )
    parser.add_argument(
        "--server-nice",
        type=int,
        default=-15,
        help="niceness of the server process, Janus's too (default: -15, so that on a machine its own "
        "load generator saturates, the server still gets the CPU it asks for and its figures measure "
        "the relay, not the scheduler; 0 to run it like everything else)",
    )
    parser.add_argument(
        "--no-direct",
        dest="direct",
        action="store_false",
        help="skip the direct peer-to-peer pair (no delay baseline, one session's less load)",
    )
    args = parser.parse_args(argv)
    janus = args.peer == JANUS
    if args.relays is None:
        args.relays = [Settings().relay] if janus else ["decoding", "passthrough"]
    if args.sessions is None:
        args.sessions = JANUS_SESSIONS if janus else [1, 2, 4]
    if args.load is None:
        args.load = "light" if janus else "full"
    if args.max_sessions is None and args.capacity:
        args.max_sessions = MAX_SESSIONS[args.load]
    args.media = None  # the light load's encoded loops, made in main()
    args.shim = None  # Janus's loopback shim, built in main()
    if not args.relays or not args.sessions or min(args.sessions) < 1:
        parser.error("--relays and --sessions need at least one entry, and N >= 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, on_sigterm)
    ctx = multiprocessing.get_context("forkserver")
    assert isinstance(ctx, ForkServerContext)
    # Workers fork from a server that has already imported aiortc and the load modules, so
    # starting 2N of them costs a fork each, not an interpreter start and a second of imports.
    ctx.set_forkserver_preload(["__main__", "relay_load", "janus_client"])
    ladder = LIGHT_CAPACITY_STEPS if args.load == "light" else CAPACITY_STEPS
    steps = [n for n in ladder if n <= args.max_sessions] if args.capacity else args.sessions
    say(
        f"bench_relay: {git_version()}, aiortc {aiortc.__version__}, PyAV {av.__version__}, {CORES} cores; "
        f"640x480@30 VP8 at {args.video_kbps} kbps + Opus per participant, 1:1 sessions; "
        f"warm-up {args.warmup:g} s, window {args.seconds:g} s"
    )
    if args.load == "light":
        started = time.process_time()
        args.media = with_distinct_audio(encode_media(args.video_kbps * 1000))
        say(
            f"load light: replaying a {LOOP_SECONDS} s loop encoded once here in "
            f"{time.process_time() - started:.1f} CPU-s: VP8 {len(args.media.video)} frames, "
            f"{args.media.video_kbps_encoded:.0f} kbps, one keyframe ({len(args.media.video[0])} bytes) "
            f"at its start; Opus {len(args.media.audio)} packets of 20 ms (quiet noise, "
            f"{sum(map(len, args.media.audio)) * 8 / LOOP_SECONDS / 1000:.0f} kbps). Receivers count "
            "and identify encoded frames without decoding"
        )
    say(f"before the run, work this run did not start kept {busy_cores(2.0):.2f} of {CORES} cores busy")
    targets = list(args.relays)
    with tempfile.TemporaryDirectory(prefix="bench_relay-") as tmp:
        if args.peer == JANUS:
            try:
                args.shim = build_shim(Path(tmp) / "janus-shim")
                targets.append(JANUS)
                say(f"peer janus: {janus_version()}, loopback shim built from {SHIM.relative_to(REPO)}")
            except (JanusUnavailable, subprocess.CalledProcessError) as exc:
                say(f"peer janus: not measured: {exc}")
        results = run(ctx, targets, steps, args, Path(tmp))
    report(args, targets, results)
    return 0 if results else 1


def janus_version() -> str:
    """Janus's first line of --help: "Janus version: 1102 (1.1.2)"."""
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run(["janus", "--help"], capture_output=True, text=True, timeout=10).stdout
        return out.splitlines()[0] if out else "janus"
    return "janus"


def report(args: argparse.Namespace, targets: list[str], results: list[StepResult]) -> None:
    if not results:
        say("No step completed.")
        return
    ordered = sorted(results, key=lambda r: (targets.index(r.relay), r.sessions))
    say("\nServer load, memory and what the receivers got (over the window):")
    say(load_table(ordered))
    if args.load == "light":
        say("\nLight load, counted from the encoded frames at each receiver (over the window):")
        say(light_table(ordered))
        say("\nDelay, sender's hand-over to arrival of the encoded frame (added = through server - direct):")
    else:
        say("\nLatency, sender's stamp to decoded frame at the receiver (added = through server - direct):")
    say(latency_table(ordered))
    if JANUS in targets:
        say(
            "\nvsession and Janus, same load, same run "
            "(RSS: mean during the window; added: against the direct pair):"
        )
        say(comparison_table(ordered))
    disturbed = [f"{r.relay} N={r.sessions}" for r in ordered if r.other_cores > DISTURBED]
    if disturbed:
        say(
            f"WARNING: other work on this machine used more than {DISTURBED} cores during: "
            f"{', '.join(disturbed)} (column 'other'); those figures understate what the machine can do."
        )
    say("")
    for line in ratio_lines(ordered):
        say(line)
    say("")
    for line in capacity_lines(targets, ordered, args.max_sessions):
        say(line)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("\ninterrupted; every process this run started has been stopped", file=sys.stderr)
        sys.exit(130)
