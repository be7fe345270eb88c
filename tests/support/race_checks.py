"""What the end-to-end race rounds check after each round: what the server's consent machine did
(seen through a log kept beside it), what each segment file holds (decrypted by stock `age`,
decoded with PyAV, every video frame's stamped counter read), and that the DB rows and the audit
chain say the same as the files."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import subprocess
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av

from tests.support.media import read_counter
from vsession.audit import verify
from vsession.consent.machine import Consent
from vsession.consent.segments import Plan
from vsession.sfu.room import THERAPIST_PEER


@dataclass
class Event:
    kind: str  # withdraw | answer | joining | ask_again (arrived at the server) | accept_sent | plan
    pid: str
    plan: Plan | None = None


class ConsentLog:
    """The consent machine's inputs as they arrive, and the segments it plans, in the event loop's
    order. Each wrapper notes the call, then runs the real method: nothing is replaced."""

    def __init__(self, consent: Consent) -> None:
        self.events: list[Event] = []
        for name, kind in (
            ("withdraw", "withdraw"),
            ("member_joining", "joining"),
            ("ask_again", "ask_again"),
        ):
            setattr(consent, name, self._noting(kind, getattr(consent, name)))
        real_answer = consent.answer

        async def answer(by: str, message: dict[str, Any]) -> None:
            self.events.append(Event(f"answer:{message.get('answer')}", by))
            await real_answer(by, message)

        consent.answer = answer  # type: ignore[method-assign]
        recorder: Any = consent.recorder
        real_prepare = recorder.prepare

        def prepare(plan: Plan, *args: Any) -> Any:
            self.events.append(Event("plan", "", plan))
            return real_prepare(plan, *args)

        recorder.prepare = prepare

    def _noting(self, kind: str, real: Callable[..., Awaitable[None]]) -> Callable[..., Awaitable[None]]:
        async def noted(pid: str, *args: Any) -> None:
            self.events.append(Event(kind, pid))
            await real(pid, *args)

        return noted

    def accept_sent(self, pid: str) -> None:
        """Noted by the test right before a participant's accept goes out."""
        self.events.append(Event("accept_sent", pid))

    def plans(self, since: int) -> list[tuple[int, Plan]]:
        return [(i, e.plan) for i, e in enumerate(self.events) if e.plan is not None and i >= since]

    def arrived(self, kind: str, pid: str, since: int) -> int | None:
        """Where the first `kind` from `pid` at or after `since` arrived in the log."""
        return next(
            (i for i, e in enumerate(self.events) if i >= since and e.kind == kind and e.pid == pid), None
        )

    def order(self, since: int, kinds: tuple[str, ...]) -> str:
        """The arrival order of the race's events, e.g. 'joining:s3 < withdraw:s1 < ask_again:t'."""
        return " < ".join(f"{e.kind}:{e.pid}" for e in self.events[since:] if e.kind in kinds)

    def opened_without_consent(self, since: int) -> list[str]:
        """Segments planned from `since` on with someone who had not accepted since their last
        withdrawal, decline or (re)joining arrived: their consent was void when the gate opened.
        The log begins before any request, when only the therapist (whose asking is their
        consent) counts as consenting."""
        consenting = {THERAPIST_PEER}
        found = []
        for i, e in enumerate(self.events):
            if e.kind in ("withdraw", "joining", "answer:decline"):
                consenting.discard(e.pid)
            elif e.kind == "accept_sent":
                consenting.add(e.pid)
            elif e.plan is not None and i >= since and set(e.plan.participants) - consenting:
                void = sorted(set(e.plan.participants) - consenting)
                plan = f"segment {e.plan.number} opened with {list(e.plan.participants)}"
                found.append(f"{plan} while {void} had not accepted")
        return found


MATROSKA_CLUSTER = bytes.fromhex("1f43b675")  # the element ID every cluster of media starts with


@dataclass
class Counters:
    """One segment file: per sender, the counters of the video frames decoded from it."""

    by_sender: dict[str, list[int]] = field(default_factory=dict)
    unreadable: int = 0  # decoded frames that carried no clean counter
    plaintext_bytes: int = 0
    header_only: bool = False  # a WebM header and no media at all

    @property
    def frames(self) -> int:
        return sum(len(c) for c in self.by_sender.values())


def read_segment(identity: Path, encrypted: Path) -> Counters:
    """Decrypt with stock `age` (to a pipe: no plaintext on disk) and read every video frame's
    counter; a track is tagged with its participant's id. Blocking: run it in a thread."""
    plain = subprocess.run(
        ["age", "-d", "-i", str(identity), str(encrypted)], capture_output=True, check=False
    )
    if plain.returncode != 0:
        raise AssertionError(f"stock age refused {encrypted.name}: {plain.stderr.decode()[:200]}")
    counters = Counters(plaintext_bytes=len(plain.stdout))
    if not plain.stdout:
        return counters  # the segment closed before any track's first packet: an empty file
    if MATROSKA_CLUSTER not in plain.stdout:
        # The gate closed between the header and the first packet: tracks but no media, which
        # PyAV will not open (EOFError). Anything else that fails to open is a failure.
        counters.header_only = True
        return counters
    with av.open(io.BytesIO(plain.stdout)) as container:
        streams = list(container.streams.video)
        for packet in container.demux(*streams) if streams else ():
            sender = packet.stream.metadata["PARTICIPANT"]
            for frame in packet.decode():
                counter = read_counter(frame)
                if counter is None:
                    counters.unreadable += 1
                else:
                    counters.by_sender.setdefault(sender, []).append(counter)
    return counters


def file_facts(path: Path) -> tuple[int, str] | None:
    """Size and SHA-256 of a file, or None if it is missing. Blocking: run it in a thread."""
    if not path.is_file():
        return None
    data = path.read_bytes()
    return len(data), hashlib.sha256(data).hexdigest()


async def segment_rows(services: Any, session_id: str, after: int) -> list[dict[str, Any]]:
    rows = await services.db.fetchall(
        "SELECT * FROM recordings WHERE session_id = ? AND segment > ? ORDER BY segment", (session_id, after)
    )
    return [dict(r) for r in rows]


async def records_agree(services: Any, row: dict[str, Any], path: Path, plan: Plan | None) -> list[str]:
    """The row, its two audit entries, the plan that opened it and the file tell one story."""
    problems = []
    if row["state"] != "complete":
        problems.append(f"segment {row['segment']} is {row['state']}: {row['end_reason']}")
    facts = await asyncio.to_thread(file_facts, path)
    if facts is None:
        return [*problems, f"segment {row['segment']}: {path.name} is missing"]
    size, digest = facts
    if (row["bytes"], row["ciphertext_sha256"]) != facts:
        problems.append(f"segment {row['segment']}: the row's size or sha256 is not the file's")
    entries = await services.db.fetchall(
        "SELECT action, outcome, details FROM audit_log WHERE object = ? ORDER BY seq",
        (f"recording:{row['id']}",),
    )
    audited = [(e["action"], e["outcome"], json.loads(e["details"])) for e in entries]
    if [(a, o) for a, o, _ in audited] != [("recording.start", "ok"), ("recording.stop", "complete")]:
        problems.append(f"segment {row['segment']}: audit entries {[(a, o) for a, o, _ in audited]}")
    else:
        start, stop = audited[0][2], audited[1][2]
        if start["participants"] != json.loads(row["participants"]) or start["segment"] != row["segment"]:
            problems.append(f"segment {row['segment']}: recording.start says {start}, the row {row}")
        if (stop["bytes"], stop["ciphertext_sha256"]) != (size, digest):
            problems.append(f"segment {row['segment']}: recording.stop's sha256 or size is not the file's")
    if plan is None:
        problems.append(f"segment {row['segment']} was never planned by the consent machine")
    elif list(plan.participants) != json.loads(row["participants"]) or plan.request_id != row["request_id"]:
        problems.append(f"segment {row['segment']}: planned for {plan}, stored as {row['participants']}")
    return problems


async def audit_chain_intact(services: Any) -> list[str]:
    result = await verify(services.db, services.audit_key)
    return [] if result.ok else [f"the audit chain is broken: {result}"]
