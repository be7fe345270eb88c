"""Every gate-closing event stops writing: withdrawal, leave, disconnect, a newcomer, a therapist
stop, the session ending, and a disk error.

Every sender stamps a frame counter into each video frame (tests.support.media.CounterTrack). Right
before the event the test notes each sender's counter: the number of the last frame that sender
handed to its encoder. After the call, each segment file is decrypted with the stock `age` tool (or,
for a file cut short by the disk error, salvaged: stock `age` refuses it), every video track is
decoded with PyAV, and no track may hold a frame numbered above its sender's counter at the event
plus one frame interval.

The server runs in-process on the test's event loop with real aiortc peers; the disk error is a real
ENOSPC from a small tmpfs mounted on the recordings folder and filled at the chosen moment.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import av
import pytest
from aiortc import AudioStreamTrack

from tests.support.call_client import CallClient
from tests.support.inprocess import InProcessCall
from tests.support.media import CounterTrack, read_counter
from tests.support.practice_key import make_key, stock_age_decrypt
from vsession.recording import age

FRAME_SLACK = 1  # "plus one frame interval"
RECORD_FRAMES = 60  # about 2 s at 30 fps before the event
AFTER_FRAMES = 30  # about 1 s of media after it


@dataclass
class Party:
    peer_id: str
    client: CallClient
    camera: CounterTrack
    mark: int = 0  # index into client.messages where the current step began


@dataclass
class Measured:
    """What one segment file holds: per sender, the counters of the frames decoded from it."""

    counters: dict[str, list[int]] = field(default_factory=dict)
    unreadable: int = 0  # decoded frames that carried no clean counter

    def top(self, peer_id: str) -> int:
        return max(self.counters[peer_id])

    def bottom(self, peer_id: str) -> int:
        return min(self.counters[peer_id])


def party(call: InProcessCall, who: Any, peer_id: str) -> Party:
    url, headers = call.ws(who)
    camera = CounterTrack()
    return Party(
        peer_id, CallClient(url, headers, {"camera": camera, "microphone": AudioStreamTrack()}), camera
    )


async def connect(p: Party) -> None:
    """CallClient.join without its join message, so a join can be sent at a moment of our choosing."""
    client = p.client
    client._session = aiohttp.ClientSession()
    client._ws = await client._session.ws_connect(client.ws_url, headers=client.headers)
    client._tasks.append(asyncio.create_task(client._read()))


async def join_and_see(parties: list[Party]) -> None:
    for p in parties:
        await p.client.join()
    await seeing(parties)


async def seeing(parties: list[Party]) -> None:
    """Every party receives every other party's camera."""
    for p in parties:
        others = [o.peer_id for o in parties if o is not p]
        await p.client.wait_for(
            lambda p=p, others=others: all(p.client.frames[(o, "camera")] >= 5 for o in others)
        )


def mark(parties: list[Party]) -> None:
    for p in parties:
        p.mark = len(p.client.messages)


def since_mark(p: Party, kind: str) -> list[dict[str, Any]]:
    return [m for m in p.client.messages[p.mark :] if m.get("type") == kind]


def indicator(p: Party) -> str | None:
    last = p.client.last("recording")
    return last["state"] if last else None


async def accept(p: Party) -> None:
    await p.client.wait_for(lambda: bool(since_mark(p, "consent_prompt")))
    prompt = since_mark(p, "consent_prompt")[-1]
    await p.client.send(
        {"type": "consent", "request": prompt["request"], "prompt": prompt["prompt"], "answer": "accept"}
    )


async def all_recording(parties: list[Party]) -> None:
    for p in parties:
        await p.client.wait_for(lambda p=p: indicator(p) == "recording")


async def start_recording(therapist: Party, clients: list[Party]) -> None:
    mark([therapist, *clients])
    await therapist.client.send({"type": "record", "action": "request"})
    for c in clients:
        await accept(c)
    await all_recording([therapist, *clients])


async def media_runs(p: Party, frames: int) -> None:
    """Wait until `p` has sent `frames` more frames (a clock made of frames, not of sleeps)."""
    target = p.camera.counter + frames
    await p.client.wait_for(lambda: p.camera.counter >= target)


async def saw_recording_stop(parties: list[Party], states: tuple[str, ...]) -> dict[str, list[str]]:
    """Each party was told, after its mark, that the recorder is no longer recording."""
    for p in parties:
        try:
            await p.client.wait_for(lambda p=p: any(m["state"] in states for m in since_mark(p, "recording")))
        except AssertionError as exc:
            told = [m["state"] for m in since_mark(p, "recording")]
            raise AssertionError(f"{p.peer_id} was never told {states} after the event, only {told}") from exc
    return {p.peer_id: [m["state"] for m in since_mark(p, "recording")] for p in parties}


async def close_all(parties: list[Party]) -> None:
    """Leave the call with a message first, so the server finishes its side of leaving before the
    socket goes: the test server cancels a handler whose client has disconnected."""
    for p in parties:
        ws = p.client._ws
        if ws is not None and not ws.closed:
            with contextlib.suppress(Exception):
                p.mark, errors = len(p.client.messages), len(p.client.errors)
                await p.client.send({"type": "leave"})
                await p.client.wait_for(
                    lambda p=p, ws=ws, errors=errors: (
                        bool(since_mark(p, "left"))
                        or len(p.client.errors) > errors  # not in the call any more
                        or ws.closed
                    ),
                    patience=5,
                )
    for p in parties:
        with contextlib.suppress(Exception):
            await p.client.close()


async def recordings(call: InProcessCall) -> list[dict[str, Any]]:
    async with call.services.db.transaction() as tx:
        rows = await tx.fetchall(
            "SELECT * FROM recordings WHERE session_id = ? ORDER BY segment", (call.session_id,)
        )
    return [dict(row) for row in rows]


async def requests(call: InProcessCall) -> list[dict[str, Any]]:
    async with call.services.db.transaction() as tx:
        rows = await tx.fetchall(
            "SELECT * FROM consent_requests WHERE session_id = ? ORDER BY created_at", (call.session_id,)
        )
    return [dict(row) for row in rows]


def recording_path(call: InProcessCall, row: dict[str, Any]) -> Path:
    return call.services.settings.data_dir / "recordings" / row["file_name"]


def decode_counters(plain: Path, cut_short: bool = False) -> Measured:
    """Decode every video track of a WebM file; a track is tagged with its participant's id."""
    measured = Measured()
    with av.open(str(plain)) as container:
        streams = list(container.streams.video)
        assert streams, f"{plain.name} has no video track"
        try:
            for packet in container.demux(*streams):
                peer_id = packet.stream.metadata["PARTICIPANT"]
                for frame in packet.decode():
                    counter = read_counter(frame)
                    if counter is None:
                        measured.unreadable += 1
                    else:
                        measured.counters.setdefault(peer_id, []).append(counter)
        except av.error.FFmpegError:
            if not cut_short:  # only a salvaged prefix may end inside a packet
                raise
    return measured


def read_segment(
    call: InProcessCall, row: dict[str, Any], identity: Path, tmp_path: Path, may_be_empty: bool = False
) -> Measured:
    """Decrypt a complete segment with the stock `age` tool and read the counters it holds. A
    segment that ended before any track's first packet holds no media (`age` writes no file, or
    only the WebM header): with `may_be_empty`, that reads as no counters."""
    plain = tmp_path / f"segment-{row['segment']}.webm"
    stock_age_decrypt(identity, recording_path(call, row), plain)
    try:
        measured = decode_counters(plain)
    except av.error.FFmpegError:
        if not may_be_empty:
            raise
        return Measured()
    if may_be_empty and not measured.counters:
        return measured
    total = sum(len(c) for c in measured.counters.values())
    # The decoder reads the stamps: almost every frame carries a clean counter.
    assert total > 0 and measured.unreadable <= total // 20, (total, measured.unreadable)
    return measured


def assert_nothing_after(
    measured: Measured, at_event: dict[str, int], senders: list[str], report: str
) -> dict[str, tuple[int, int]]:
    figures = {peer_id: (at_event[peer_id], measured.top(peer_id)) for peer_id in senders}
    print(f"\n{report}: counter at event vs last frame in file: {figures}")
    for peer_id, (event, top) in figures.items():
        assert top <= event + FRAME_SLACK, f"{peer_id}: frame {top} written after the event at {event}"
        # Not vacuous: the file does hold this sender's frames from shortly before the event.
        assert top > event - AFTER_FRAMES, (
            f"{peer_id}: the file stops long before the event ({top} vs {event})"
        )
    return figures


def counters(parties: list[Party]) -> dict[str, int]:
    return {p.peer_id: p.camera.counter for p in parties}


async def recording_one_to_one(
    inprocess_call: Any, tmp_path: Path
) -> tuple[Path, InProcessCall, Party, Party]:
    """A therapist and one client in a call, both consenting, recorded for RECORD_FRAMES frames.
    Returns the practice identity file, the call, and the two parties."""
    identity, recipient = make_key(tmp_path)
    call = await inprocess_call(clients=1, recording_recipient=recipient)
    therapist, client = party(call, call.therapist.agent, "t"), party(call, call.clients[0], "s1")
    try:
        await join_and_see([therapist, client])
        await start_recording(therapist, [client])
        await media_runs(therapist, RECORD_FRAMES)
    except BaseException:
        await close_all([therapist, client])
        raise
    return identity, call, therapist, client


# --- the events ------------------------------------------------------------------------------


async def test_withdrawal_stops_writing(inprocess_call, tmp_path: Path) -> None:
    identity, call, therapist, client = await recording_one_to_one(inprocess_call, tmp_path)
    everyone = [therapist, client]
    try:
        mark(everyone)
        at_event = counters(everyone)
        await client.client.send({"type": "withdraw"})

        await media_runs(therapist, AFTER_FRAMES)
        seen = await saw_recording_stop(everyone, ("paused",))
    finally:
        await close_all(everyone)

    assert all(states[-1] == "paused" for states in seen.values()), seen
    rows = await recordings(call)
    assert [(r["segment"], r["state"]) for r in rows] == [(1, "complete")]
    measured = read_segment(call, rows[0], identity, tmp_path)
    assert_nothing_after(measured, at_event, ["t", "s1"], "withdrawal")


@pytest.mark.parametrize("how", ["leave", "disconnect"])
async def test_leaving_stops_writing(inprocess_call, tmp_path: Path, how: str) -> None:
    """s2 leaves (a leave message) or drops (its socket cut without a close frame). The two who are
    still there have both consented, so a second segment may start, without s2."""
    identity, recipient = make_key(tmp_path)
    call = await inprocess_call(clients=2, recording_recipient=recipient)
    therapist = party(call, call.therapist.agent, "t")
    s1, s2 = party(call, call.clients[0], "s1"), party(call, call.clients[1], "s2")
    everyone = [therapist, s1, s2]
    try:
        await join_and_see(everyone)
        await start_recording(therapist, [s1, s2])
        await media_runs(therapist, RECORD_FRAMES)

        mark(everyone)
        at_event = counters(everyone)
        if how == "leave":
            await s2.client.send({"type": "leave"})
        else:
            assert s2.client._ws is not None
            s2.client._ws.get_extra_info("socket").shutdown(socket.SHUT_RDWR)

        await media_runs(therapist, AFTER_FRAMES)
        seen = await saw_recording_stop([therapist, s1], ("paused", "stopped"))
    finally:
        await close_all(everyone)

    rows = await recordings(call)
    assert rows[0]["segment"] == 1 and rows[0]["state"] == "complete", rows
    measured = read_segment(call, rows[0], identity, tmp_path)
    assert_nothing_after(measured, at_event, ["t", "s1", "s2"], how)
    # Every open interval is a segment; s2 is in none after leaving.
    assert [r["segment"] for r in rows] == list(range(1, len(rows) + 1)), rows
    for row in rows[1:]:
        assert sorted(json.loads(row["participants"])) == ["s1", "t"], row
        assert row["state"] == "complete", row
        later = read_segment(call, row, identity, tmp_path, may_be_empty=True)
        assert "s2" not in later.counters, f"s2 recorded after leaving: {later.counters.get('s2', [])[:5]}"
    segments = [(r["segment"], r["end_reason"]) for r in rows]
    print(f"{how}: indicator after the event: {seen}; segments: {segments}")


async def test_newcomer_pauses_until_they_consent(inprocess_call, tmp_path: Path) -> None:
    identity, recipient = make_key(tmp_path)
    call = await inprocess_call(clients=2, recording_recipient=recipient)
    therapist = party(call, call.therapist.agent, "t")
    s1, newcomer = party(call, call.clients[0], "s1"), party(call, call.clients[1], "s2")
    present = [therapist, s1]
    everyone = [*present, newcomer]
    try:
        await join_and_see(present)
        await start_recording(therapist, [s1])
        await media_runs(therapist, RECORD_FRAMES)

        await connect(newcomer)  # the socket is open; joining the call is the event
        mark(everyone)
        at_event = counters(present)
        await newcomer.client.send({"type": "join"})

        seen = await saw_recording_stop(present, ("paused",))
        await seeing(everyone)
        await media_runs(therapist, AFTER_FRAMES)  # a second of paused recording
        # Still paused: the newcomer was asked, and has not answered yet.
        assert since_mark(newcomer, "consent_prompt")
        assert [indicator(p) for p in everyone] == ["paused"] * 3
        assert [r["segment"] for r in await recordings(call)] == [1]

        at_accept = counters(everyone)
        await accept(newcomer)
        await all_recording(everyone)
        await media_runs(therapist, AFTER_FRAMES)
        mark(everyone)
        await therapist.client.send({"type": "record", "action": "stop"})
        await saw_recording_stop(everyone, ("stopped",))
    finally:
        await close_all(everyone)

    rows = await recordings(call)
    assert [(r["segment"], r["state"]) for r in rows] == [(1, "complete"), (2, "complete")], rows
    assert sorted(json.loads(rows[0]["participants"])) == ["s1", "t"]
    assert sorted(json.loads(rows[1]["participants"])) == ["s1", "s2", "t"]
    first = read_segment(call, rows[0], identity, tmp_path)
    assert_nothing_after(first, at_event, ["t", "s1"], "newcomer")
    assert "s2" not in first.counters
    # The second segment starts after the newcomer's consent: none of the paused second is in it.
    second = read_segment(call, rows[1], identity, tmp_path)
    starts = {peer_id: (at_accept[peer_id], second.bottom(peer_id)) for peer_id in ("t", "s1", "s2")}
    print(f"newcomer: indicator {seen}; segment 2: counter at accept vs first frame: {starts}")
    for peer_id, (accepted, first_frame) in starts.items():
        assert first_frame >= accepted - FRAME_SLACK, f"{peer_id}: frame {first_frame} is from before consent"


async def test_therapist_stop_stops_writing(inprocess_call, tmp_path: Path) -> None:
    identity, call, therapist, client = await recording_one_to_one(inprocess_call, tmp_path)
    everyone = [therapist, client]
    try:
        mark(everyone)
        at_event = counters(everyone)
        await therapist.client.send({"type": "record", "action": "stop"})

        await media_runs(therapist, AFTER_FRAMES)
        seen = await saw_recording_stop(everyone, ("stopped",))
    finally:
        await close_all(everyone)

    assert all(states[-1] == "stopped" for states in seen.values()), seen
    rows = await recordings(call)
    assert [(r["segment"], r["state"], r["end_reason"]) for r in rows] == [
        (1, "complete", "stopped by therapist")
    ]
    assert (await requests(call))[-1]["end_reason"] == "stopped by therapist"
    measured = read_segment(call, rows[0], identity, tmp_path)
    assert_nothing_after(measured, at_event, ["t", "s1"], "stop")


async def test_session_end_stops_writing(inprocess_call, tmp_path: Path) -> None:
    identity, call, therapist, client = await recording_one_to_one(inprocess_call, tmp_path)
    everyone = [therapist, client]
    try:
        mark(everyone)
        at_event = counters(everyone)
        agent = call.therapist.agent
        await asyncio.to_thread(agent.post, f"/api/sessions/{call.session_id}/end", {})

        # Ending the session ends the call, so the media stops too; the indicator must follow.
        seen = await saw_recording_stop(everyone, ("stopped",))
    finally:
        await close_all(everyone)

    # The request is over, not merely paused: nothing is recorded after the session ends.
    assert all(states[-1] == "stopped" for states in seen.values()), seen
    assert (await requests(call))[-1]["end_reason"] == "session ended"
    rows = await recordings(call)
    assert [(r["segment"], r["state"]) for r in rows] == [(1, "complete")], rows
    measured = read_segment(call, rows[0], identity, tmp_path)
    assert_nothing_after(measured, at_event, ["t", "s1"], "session end")


# --- a disk error ------------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 16 MiB tmpfs as the in-process server's recordings folder (data_dir/recordings)."""
    folder = tmp_path / "data" / "recordings"
    folder.mkdir(parents=True, mode=0o700)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m,mode=0700", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.fail(
            f"this test mounts a small tmpfs to make the disk fill up (run as root): {mounted.stderr}"
        )
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def fill_up(folder: Path) -> int:
    """Take every free byte of the file system under `folder`; returns how many were taken."""
    taken = 0
    with open(folder / "filler", "wb", buffering=0) as handle:
        for size in (1 << 20, 4096, 1):
            block = bytes(size)
            while True:
                try:
                    taken += handle.write(block)
                except OSError as exc:
                    assert exc.errno == errno.ENOSPC, exc
                    break
    return taken


def stock_age_refuses(identity: Path, encrypted: Path, plain: Path) -> bool:
    run = subprocess.run(
        ["age", "-d", "-i", str(identity), "-o", str(plain), str(encrypted)], capture_output=True, text=True
    )
    return run.returncode != 0


async def test_disk_error_stops_writing_and_fails_closed(
    small_disk: Path, inprocess_call, tmp_path: Path
) -> None:
    identity, call, therapist, client = await recording_one_to_one(inprocess_call, tmp_path)
    everyone = [therapist, client]
    try:
        mark(everyone)
        at_event = counters(everyone)
        fill_up(small_disk)  # synchronous: no frame moves while the disk fills

        seen = await saw_recording_stop(everyone, ("stopped", "paused"))
        await media_runs(therapist, AFTER_FRAMES)
        consent = call.services.sfu.rooms[call.session_id].listener
        assert consent is not None
        assert not consent.gate.is_open
        assert consent.request is None and consent.state == "stopped"
    finally:
        await close_all(everyone)

    assert all(states[-1] == "stopped" for states in seen.values()), seen
    # The pages hear that the request ended and why in a word; the error's text (paths, the
    # system's message) stays in the server's records.
    for person in everyone:
        closed = person.client.last("consent_closed")
        assert closed is not None and closed["reason"] == "recorder_error", closed
    rows = await recordings(call)
    assert [(r["segment"], r["state"]) for r in rows] == [(1, "failed")], rows
    assert "No space left on device" in rows[0]["end_reason"], rows[0]["end_reason"]
    assert "No space left on device" in (await requests(call))[-1]["end_reason"]
    async with call.services.db.transaction() as tx:
        stops = await tx.fetchall(
            "SELECT outcome, details FROM audit_log WHERE action = 'recording.stop' AND object = ?",
            (f"recording:{rows[0]['id']}",),
        )
    assert [s["outcome"] for s in stops] == ["failed"], stops
    assert "No space left on device" in json.loads(stops[0]["details"])["reason"]

    path = recording_path(call, rows[0])
    keys = age.read_identities(identity)
    verdict = age.verify(path, keys)
    assert verdict.status is age.Status.TRUNCATED, verdict
    assert verdict.chunks > 0, verdict
    assert stock_age_refuses(identity, path, tmp_path / "refused.webm")  # it vouches only for whole files

    plain = tmp_path / "salvaged.webm"
    with plain.open("wb") as out:
        salvaged = age.decrypt(path, keys, out, salvage=True)
    assert salvaged.written == verdict.plaintext_bytes > 0
    measured = decode_counters(plain, cut_short=True)
    assert sorted(measured.counters) == ["s1", "t"], measured  # what was written before still plays
    figures = {peer_id: (at_event[peer_id], measured.top(peer_id)) for peer_id in ("t", "s1")}
    print(f"\ndisk full: counter at event vs last frame in file: {figures}; indicator {seen}")
    for peer_id, (event, top) in figures.items():
        assert top <= event + FRAME_SLACK, f"{peer_id}: frame {top} written after the disk filled at {event}"
