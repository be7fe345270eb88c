"""Recordings at rest: listing, deletion with a receipt in the audit chain, and retention.
The server never decrypts: it holds only the practice's public recipients."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from vsession.errors import Refusal
from vsession.recording import end_reasons
from vsession.recording.recorder import digest
from vsession.rooms import personal
from vsession.sfu.room import THERAPIST_PEER
from vsession.store import consent as store
from vsession.store import therapists, therapy_sessions
from vsession.store.db import Row, Tx

if TYPE_CHECKING:
    from pathlib import Path

    from vsession.services import Services

NOT_FOUND = "There is no such recording."


def path_of(services: Services, row: Row) -> Path:
    return services.settings.data_dir / "recordings" / row["file_name"]


@dataclass
class Names:
    """Who was who in one session, as the therapist knows them. Client names are erased on
    schedule (vsession/rooms/personal.py); a seat then reads as a neutral "Client (seat 2)"."""

    title: str = ""
    therapist: str = ""
    clients: dict[str, str] = field(default_factory=dict)  # peer id -> name

    def __call__(self, peer: str) -> str:
        if peer == THERAPIST_PEER:
            return self.therapist or "The therapist"
        seat = peer.removeprefix("s")
        return self.clients.get(peer) or (f"Client (seat {seat})" if seat.isdigit() else "A client")


async def names_in(services: Services, tx: Tx, session_id: str) -> Names:
    session = await therapy_sessions.get(tx, session_id)
    if session is None:
        return Names()
    account = await therapists.by_id(tx, session.therapist_id)
    seats = await therapy_sessions.seats_of(tx, session_id)
    return Names(
        personal.title_of(services.personal, session),
        account.display_name if account else "",
        {f"s{seat.seat}": personal.name_of(services.personal, seat) for seat in seats},
    )


async def newcomer(tx: Tx, row: Row) -> tuple[str, str] | None:
    """Who came in and paused a segment that ended JOINED, with their first answer to the request."""
    recorded = json.loads(row["participants"])
    answers = await tx.fetchall(
        "SELECT participant, answer FROM consent_answers WHERE request_id = ? AND at >= ?"
        " AND answer IN ('accept', 'decline') ORDER BY id",
        (row["request_id"], row["started_at"]),
    )
    return next(((a["participant"], a["answer"]) for a in answers if a["participant"] not in recorded), None)


def seat_order(peer: str) -> tuple[bool, int, str]:
    """The therapist first, then clients by seat."""
    return peer != THERAPIST_PEER, len(peer), peer


def file_state(row: Row) -> str:
    """complete | truncated (a salvageable prefix: the writing was cut off) | empty | writing."""
    if row["state"] in ("complete", "writing"):
        return str(row["state"])
    return "truncated" if row["bytes"] else "empty"


def describe(row: Row, names: Names, joined: tuple[str, str] | None = None) -> dict[str, Any]:
    ended = row["ended_at"]
    return {
        "id": row["id"],
        "session": row["session_id"],
        "segment": row["segment"],
        "title": names.title,
        "people": [names(peer) for peer in sorted(json.loads(row["participants"]), key=seat_order)],
        "started_at": row["started_at"],
        "ended_at": ended,
        "duration_seconds": None if ended is None else round(max(0.0, ended - row["started_at"]), 1),
        "state": row["state"],
        "file": file_state(row),
        "ended": end_reasons.words(row["end_reason"] or "", names, joined) if ended is not None else "",
        "bytes": row["bytes"],
        "ciphertext_sha256": row["ciphertext_sha256"],
    }


async def listing(services: Services, therapist_id: int | None) -> list[dict[str, Any]]:
    async with services.db.transaction() as tx:
        sessions: dict[str, Names] = {}
        described = []
        for row in await store.recordings_of(tx, therapist_id):
            if row["session_id"] not in sessions:
                sessions[row["session_id"]] = await names_in(services, tx, row["session_id"])
            joined = await newcomer(tx, row) if row["end_reason"] == end_reasons.JOINED else None
            described.append(describe(row, sessions[row["session_id"]], joined))
        return described


async def owned(services: Services, therapist_id: int, recording_id: str) -> Row:
    async with services.db.transaction() as tx:
        row = await store.recording(tx, recording_id)
    if row is None or row["therapist_id"] != therapist_id or row["state"] == "deleted":
        raise Refusal(404, NOT_FOUND)
    if row["state"] == "writing":
        raise Refusal(409, "This recording is still being written.")
    return row


def on_disk(path: Path) -> tuple[int, str, float | None]:
    """Size, SHA-256 and last modification time of a file (None if it is missing)."""
    size, sha256 = digest(path)
    with contextlib.suppress(FileNotFoundError):
        return size, sha256, path.stat().st_mtime
    return size, sha256, None


def remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


async def delete(services: Services, row: Row, actor: str, reason: str) -> None:
    """Destroy the file, then write the receipt. The file is ciphertext for keys the server never
    had, so there is no key material here to destroy beyond the file itself."""
    await asyncio.to_thread(remove, path_of(services, row))  # unlinking a long recording takes ms
    async with services.db.transaction() as tx:
        await store.mark_deleted(tx, row["id"], services.clock.now())
        await services.audit.append(
            tx,
            actor=actor,
            action="recording.delete",
            obj=f"recording:{row['id']}",
            details={
                "reason": reason,
                "bytes": row["bytes"],
                "ciphertext_sha256": row["ciphertext_sha256"],
                "session": row["session_id"],
                "segment": row["segment"],
            },
        )


async def recover_interrupted(services: Services) -> int:
    """Segments left 'writing' by a process that died mid-recording (kill -9, power loss): the file
    verifies as TRUNCATED, with a salvageable prefix. Record each as failed, with its size and
    ciphertext SHA-256, in the DB and the audit chain; otherwise it could never be downloaded,
    deleted, or reached by retention."""
    reason = end_reasons.INTERRUPTED

    def stranded(row: Row | None) -> bool:
        return row is not None and row["state"] == "writing" and row["id"] not in services.recordings.live

    async with services.db.transaction() as tx:
        candidates = [r for r in await store.writing(tx) if stranded(r)]
    for row in candidates:
        size, sha256, written = await asyncio.to_thread(on_disk, path_of(services, row))
        async with services.db.transaction() as tx:
            if not stranded(await store.recording(tx, row["id"])):
                continue  # finished meanwhile
            # It ended when its last bytes reached the disk, not when the server came back.
            ended = min(services.clock.now(), max(row["started_at"], written or 0.0))
            await store.finish_recording(tx, row["id"], "failed", reason, size, sha256, ended)
            await services.audit.append(
                tx,
                actor="system",
                action="recording.stop",
                obj=f"recording:{row['id']}",
                outcome="failed",
                details={"reason": reason, "bytes": size, "ciphertext_sha256": sha256},
            )
    return len(candidates)


async def apply_retention(services: Services) -> int:
    """Run by housekeeping at start-up and then every minute; a crash's leftovers are recorded
    first, so retention reaches them too."""
    await recover_interrupted(services)
    days = services.settings.retention_days
    if days == 0:
        return 0
    async with services.db.transaction() as tx:
        expired = await store.older_than(tx, services.clock.now() - days * 86400)
    for row in expired:
        await delete(services, row, "system", f"retention: older than {days} days")
    return len(expired)
