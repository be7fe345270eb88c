"""kill -9 of a live `vsession serve` in the middle of a recording: the file on disk verifies as
TRUNCATED, `decrypt --salvage` gives its authenticated prefix, and that prefix plays with ffprobe,
missing at most about a second at the end (the recorder seals and fsyncs at least once a second).
Started again, the server records the cut-off segment as failed, so it can be deleted, and the
therapist's recordings page shows it truncated because the server restarted."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import sqlite3
import subprocess
import time
from pathlib import Path

from aiortc import AudioStreamTrack

from tests.support.actors import Agent
from tests.support.call_client import CallClient
from tests.support.call_server import prepare_call, start_call_server
from tests.support.cli import run_vsession as vsession
from tests.support.media import ColourTrack
from vsession.recording import age

RECORD_SECONDS = 5.0
# "At most about one second" lost: the recorder's 1 s sync plus scheduling slack.
MAX_LOST_SECONDS = 1.5


def packet_times(path: Path) -> dict[int, tuple[str, int, float, float]]:
    """stream index -> (codec_type, packets, first pts_time, last pts_time)."""
    out = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-show_entries",
            "packet=stream_index,pts_time:stream=index,codec_type",
            "-of",
            "json",
            str(path),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    probed = json.loads(out.stdout)
    seen: dict[int, tuple[str, int, float, float]] = {}
    kinds = {s["index"]: s["codec_type"] for s in probed["streams"]}
    for packet in probed.get("packets", []):
        index, at = packet["stream_index"], float(packet["pts_time"])
        kind, count, first, last = seen.get(index, (kinds[index], 0, at, at))
        seen[index] = (kind, count + 1, min(first, at), max(last, at))
    return seen


async def test_kill_9_mid_recording_leaves_a_truncated_file_whose_prefix_plays(tmp_path: Path) -> None:
    identity_file = tmp_path / "identity.txt"
    identity, recipient = age.generate_identity()
    age.write_identity_file(identity_file, identity, recipient)
    server = start_call_server(tmp_path, f'recording_recipient = "{recipient}"', "retention_days = 30")
    try:
        call = await prepare_call(server, clients=1)
        therapist = CallClient(
            *call.therapist_ws(), {"camera": ColourTrack((220, 40, 40)), "microphone": AudioStreamTrack()}
        )
        client = CallClient(
            *call.client_ws(0), {"camera": ColourTrack((40, 200, 40)), "microphone": AudioStreamTrack()}
        )
        try:
            await therapist.join()
            await client.join()
            await therapist.wait_for(
                lambda: therapist.frames[("s1", "camera")] >= 5 and client.frames[("t", "camera")] >= 5,
                patience=30,
            )
            await therapist.send({"type": "record", "action": "request"})
            await client.wait_for(lambda: client.last("consent_prompt") is not None)
            prompt = client.last("consent_prompt")
            assert prompt is not None
            await client.send(
                {
                    "type": "consent",
                    "request": prompt["request"],
                    "prompt": prompt["prompt"],
                    "answer": "accept",
                }
            )
            await client.wait_for(lambda: (client.last("recording") or {}).get("state") == "recording")
            started = time.monotonic()
            await asyncio.sleep(RECORD_SECONDS)
            recorded = time.monotonic() - started
            server.process.kill()  # SIGKILL: no cleanup of any kind
            server.process.wait()
            killed_at = time.time()
        finally:
            await therapist.close()
            await client.close()
    finally:
        server.stop()

    files = list((server.data_dir / "recordings").glob("*.age"))
    assert len(files) == 1, files
    encrypted = files[0]

    verdict = vsession("recordings", "verify", str(encrypted), "-i", str(identity_file))
    assert verdict.returncode == 1, verdict
    assert verdict.stdout.startswith("TRUNCATED"), verdict.stdout

    # Without --salvage a truncated file is not decrypted, and nothing is left behind.
    refused = tmp_path / "refused.webm"
    plain_try = vsession(
        "recordings", "decrypt", str(encrypted), "-i", str(identity_file), "-o", str(refused)
    )
    assert plain_try.returncode == 1, plain_try
    assert not refused.exists()

    salvaged = tmp_path / "salvaged.webm"
    result = vsession(
        "recordings", "decrypt", "--salvage", str(encrypted), "-i", str(identity_file), "-o", str(salvaged)
    )
    assert result.returncode == 0, result
    assert salvaged.stat().st_size > 0

    seen = packet_times(salvaged)
    # One video and one audio track per participant, each with packets in the salvaged prefix.
    assert sorted(kind for kind, *_ in seen.values()) == ["audio", "audio", "video", "video"], seen
    assert all(count > 0 for _, count, _, _ in seen.values()), seen
    # The file's clock starts when the segment began waiting for first packets; the indicator
    # says "recording" once every track has given one. So measure from the latest first packet,
    # which errs towards reporting more loss, not less.
    began = max(first for _, _, first, _ in seen.values())
    last_video = max(last for kind, _, _, last in seen.values() if kind == "video")
    lost = recorded - (last_video - began)
    print(f"\nrecorded {recorded:.2f} s before kill -9; salvaged video covers {last_video - began:.2f} s;")
    print(f"lost at most {lost:.2f} s at the end")
    assert lost <= MAX_LOST_SECONDS, f"lost {lost:.2f} s of {recorded:.2f} s (packets: {seen})"

    # Started again, the server records the cut-off segment as failed, with the size and SHA-256
    # of what is on disk, in the DB and the audit chain; it can then be deleted like any other.
    size, sha256 = encrypted.stat().st_size, hashlib.sha256(encrypted.read_bytes()).hexdigest()
    again = start_call_server(tmp_path, f'recording_recipient = "{recipient}"', "retention_days = 30")
    try:
        data_dir = str(server.data_dir)
        recording_id = encrypted.name.removesuffix(".age")
        deadline = time.monotonic() + 30  # patience only
        while True:
            listed = vsession("recordings", "list", "--data-dir", data_dir)
            [line] = [x.split() for x in listed.stdout.splitlines() if x.startswith(recording_id)]
            if line[3] != "writing" or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
        assert line[3:] == ["failed", str(size), sha256], line
        # The therapist's page says what happened in words: truncated, because the server stopped.
        # Its length runs to when its last bytes reached the disk: before the kill, not the restart.
        therapist_there = Agent(again.url, dict(call.therapist.agent.cookies))
        [shown] = (await asyncio.to_thread(therapist_there.get, "/api/recordings"))["recordings"]
        assert (shown["ended"], shown["file"], shown["people"]) == (
            "Server restarted",
            "truncated",
            ["Dr. Ada Example", "Client 1"],
        ), shown
        assert shown["started_at"] < shown["ended_at"] <= killed_at, (shown, killed_at)
        assert shown["duration_seconds"] == round(shown["ended_at"] - shown["started_at"], 1), shown
        with contextlib.closing(
            sqlite3.connect(f"file:{server.data_dir / 'vsession.sqlite3'}?mode=ro", uri=True)
        ) as db:
            stops = db.execute(
                "SELECT outcome, details FROM audit_log WHERE action = 'recording.stop' AND object = ?",
                (f"recording:{recording_id}",),
            ).fetchall()
        assert [(outcome, json.loads(details)["ciphertext_sha256"]) for outcome, details in stops] == [
            ("failed", sha256)
        ]
        deleted = vsession("recordings", "delete", recording_id, "--data-dir", data_dir)
        assert deleted.returncode == 0, deleted
        assert not encrypted.exists()
    finally:
        again.stop()
