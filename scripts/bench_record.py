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
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import statistics
import sys
import tempfile
import time
from contextlib import closing
from pathlib import Path

from aiortc import AudioStreamTrack

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from scripts.bench_relay import cpu_seconds, rss_bytes  # noqa: E402
from scripts.relay_load import Clip, StampedVideoTrack, pin_video_bitrate  # noqa: E402
from tests.support.call_client import CallClient  # noqa: E402
from tests.support.call_server import prepare_call, start_call_server  # noqa: E402
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


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=10.0, help="each CPU measurement window")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--withdrawals", type=int, default=5)
    parser.add_argument("--video-bps", type=int, default=1_200_000, help="senders' VP8 bitrate")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
