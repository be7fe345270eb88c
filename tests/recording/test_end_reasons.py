"""How each recording ended, in the words a therapist reads on the recordings page, with names
instead of ids: one real call (in-process server, real aiortc peers) walks through every way a
segment ends: a newcomer who declines, a withdrawal, the therapist's stop, a full disk (a real
ENOSPC from a small tmpfs), a client leaving, and the session ending. The files' tracks carry the
participants' names (stock `age`, then ffprobe); a live WebM holds no Duration (its header is
sealed before the length is known), so the listing gives one from the recorded timestamps. Once
retention erases the client names, the page says "Client (seat 1)"."""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import small_disk
from tests.support.call_client import CallClient
from tests.support.consent_calls import (
    consent_message,
    messages,
    new_prompt,
    record_with_consent,
    wait_state,
    withdraw_then_agree_again,
)
from tests.support.named_calls import NamedCall, start_named_call
from vsession.recording import end_reasons
from vsession.rooms import personal

NAMES = {"t": "Dr. Ada Example", "s1": "Sam", "s2": "Jo"}


@pytest.fixture
def recordings_disk(tmp_path: Path) -> Iterator[Path]:
    """A 16 MiB tmpfs as the in-process server's recordings folder (data_dir/recordings)."""
    with small_disk.mounted(tmp_path / "data" / "recordings") as folder:
        yield folder


async def media_flows(therapist: CallClient, frames: int = 30) -> None:
    """About a second more of the client's video reaches the therapist (a clock made of frames)."""
    target = therapist.frames[("s1", "camera")] + frames
    await therapist.wait_for(lambda: therapist.frames[("s1", "camera")] >= target)


async def leave(peer: CallClient) -> None:
    """Leave with a message, so the server finishes its side before the socket goes."""
    before = len(messages(peer, "left"))
    await peer.send({"type": "leave"})
    await peer.wait_for(lambda: len(messages(peer, "left")) > before)
    await peer.close()


async def state_after(peer: CallClient, mark: int, wanted: str) -> int:
    """The peer is told `wanted` after its first `mark` messages; returns where that message is."""

    def told() -> int | None:
        found = (i for i, m in enumerate(peer.messages) if i >= mark and m.get("type") == "recording")
        return next((i for i in found if peer.messages[i]["state"] == wanted), None)

    await peer.wait_for(lambda: told() is not None)
    return told() or 0


def probe(identity: Path, encrypted: Path) -> dict[str, Any]:
    """Stock `age` decrypts to a pipe (no plaintext on disk) and ffprobe reads the WebM from it."""
    plain = subprocess.run(
        ["age", "-d", "-i", str(identity), str(encrypted)], capture_output=True, check=True
    )
    shown = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-show_entries",
            "stream=codec_type:stream_tags=title,PARTICIPANT:packet=stream_index",
            "-of",
            "json",
            "-",
        ],
        input=plain.stdout,
        capture_output=True,
        check=True,
    )
    return dict(json.loads(shown.stdout))


def stock_age_refuses(identity: Path, encrypted: Path) -> bool:
    """Stock `age` refuses a truncated file (`vsession recordings decrypt --salvage` reads it)."""
    return (
        subprocess.run(["age", "-d", "-i", str(identity), str(encrypted)], capture_output=True).returncode
        != 0
    )


async def walk_through_every_end(call: NamedCall, disk: Path) -> None:
    therapist, sam = call.peer("t"), call.peer("s1")
    for peer in (therapist, sam):
        await peer.join()
    await therapist.wait_for(
        lambda: therapist.frames[("s1", "camera")] >= 5 and sam.frames[("t", "camera")] >= 5, patience=30
    )
    # 1. Jo joins a running recording, is asked, and declines.
    await record_with_consent(therapist, sam)
    await media_flows(therapist)
    jo = call.peer("s2")
    await jo.join()
    await jo.send(consent_message(await new_prompt(jo, 0), "decline"))
    await therapist.wait_for(
        lambda: (therapist.last("consent_status") or {}).get("answers", {}).get("s2") == "decline"
    )
    # 2. Jo leaves: everyone present has agreed, so recording goes on.
    mark = len(therapist.messages)
    await leave(jo)
    await state_after(therapist, mark, "recording")
    await media_flows(therapist)
    # 3. Sam withdraws; asked again, Sam agrees; the therapist stops.
    await withdraw_then_agree_again(therapist, sam)
    await media_flows(therapist)
    await therapist.send({"type": "record", "action": "stop"})
    await wait_state(therapist, "stopped")
    # 4. The disk fills up under a recording.
    await record_with_consent(therapist, sam, len(messages(sam, "consent_prompt")))
    await media_flows(therapist)
    filler = small_disk.fill_up(disk)
    await wait_state(therapist, "stopped")
    filler.unlink()
    # 5. Sam leaves: the therapist alone is still recorded (asking is their consent) until the
    # session ends.
    await record_with_consent(therapist, sam, len(messages(sam, "consent_prompt")))
    await media_flows(therapist)
    mark = len(therapist.messages)
    await leave(sam)
    await state_after(therapist, await state_after(therapist, mark, "paused"), "recording")
    # Nobody receives the therapist's media now, so no frame clock: let the segment run a while,
    # as every other step's does, so it has a length (it once ended 48 ms in, 0.0 s rounded).
    await asyncio.sleep(1.0)
    await asyncio.to_thread(call.therapist.agent.post, f"/api/sessions/{call.session_id}/end", {})
    await wait_state(therapist, "stopped")
    await therapist.close()


async def test_every_end_in_plain_words_with_names(
    recordings_disk: Path, aiohttp_server: Any, tmp_path: Path
) -> None:
    call = await start_named_call(
        aiohttp_server, tmp_path, ["Sam", "Jo"], "Weekly session", link_grace_minutes=1
    )
    await walk_through_every_end(call, recordings_disk)

    listed = await call.listing()
    ada_and_sam = [NAMES["t"], NAMES["s1"]]
    assert [(r["title"], r["people"], r["ended"], r["file"]) for r in listed] == [
        ("Weekly session", ada_and_sam, "Jo joined the call and declined", "complete"),
        ("Weekly session", ada_and_sam, "Sam withdrew consent", "complete"),
        ("Weekly session", ada_and_sam, "Recording stopped by the therapist", "complete"),
        ("Weekly session", ada_and_sam, "Recorder error: the server's disk was full", "truncated"),
        ("Weekly session", ada_and_sam, "Sam left the call", "complete"),
        ("Weekly session", [NAMES["t"]], "Session ended", "complete"),
    ]
    # What the page shows carries no internal ids (the recording's own id is for its buttons).
    shown = json.dumps([{k: v for k, v in r.items() if k in ("title", "people", "ended")} for r in listed])
    assert '"s1"' not in shown and '"t"' not in shown and "s2" not in shown

    # Each has a length from its recorded start and end; each complete file holds media in
    # tracks titled with the participants' names.
    for row in listed:
        assert row["duration_seconds"] == round(row["ended_at"] - row["started_at"], 1) > 0, row
        encrypted = recordings_disk / f"{row['id']}.age"
        if row["file"] != "complete":
            assert await asyncio.to_thread(stock_age_refuses, call.identity, encrypted)
            continue
        probed = await asyncio.to_thread(probe, call.identity, encrypted)
        tracks = sorted(
            (s["codec_type"], s["tags"]["title"], s["tags"]["PARTICIPANT"]) for s in probed["streams"]
        )
        ids = {name: pid for pid, name in NAMES.items()}
        assert tracks == sorted(
            [("video", f"{name} (camera)", ids[name]) for name in row["people"]]
            + [("audio", f"{name} (microphone)", ids[name]) for name in row["people"]]
        ), tracks
        assert probed["packets"], row

    # Names are erased on schedule after the session: the page says who by seat, never an id.
    call.clock.advance(2 * 60)
    await personal.apply_retention(call.services)
    erased = await call.listing()
    assert [(r["people"], r["ended"]) for r in erased[:2]] == [
        (["Dr. Ada Example", "Client (seat 1)"], "Client (seat 2) joined the call and declined"),
        (["Dr. Ada Example", "Client (seat 1)"], "Client (seat 1) withdrew consent"),
    ]
    assert erased[0]["title"] == "Weekly session"


def test_words_for_ends_the_call_does_not_walk_through() -> None:
    """Codes the call above does not reach, as the page words them (a reload, the therapist's own
    leaving, a crash, an error other than a full disk, a newcomer whose answer is unknown)."""
    named = {"t": "Dr. Ada Example", "s1": "Sam", "s3": "Alex"}.__getitem__
    assert [
        end_reasons.words(code, named)
        for code in (
            "reconnected:s1",
            "disconnected:s3",
            "therapist withdrew",
            "therapist disconnected",
            end_reasons.INTERRUPTED,
            end_reasons.error("OSError: [Errno 5] Input/output error: '/srv/data/recordings/x.age'"),
            end_reasons.JOINED,
        )
    ] == [
        "Sam reconnected and was asked again",
        "Alex lost their connection",
        "Recording stopped by the therapist",
        "The therapist lost their connection",
        "Server restarted",
        "Recorder error",
        "Paused while someone joined the call",
    ]
    assert (
        end_reasons.words(end_reasons.JOINED, named, ("s3", "accept")) == "Paused while Alex joined the call"
    )
