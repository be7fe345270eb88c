"""Recordings at rest: listing, deletion with a receipt in the audit chain, and retention.
The server never decrypts: it holds only the practice's public recipients."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from typing import TYPE_CHECKING, Any

from vsession.errors import Refusal
from vsession.recording.recorder import digest
from vsession.store import consent as store
from vsession.store.db import Row

if TYPE_CHECKING:
    from pathlib import Path

    from vsession.services import Services

NOT_FOUND = "There is no such recording."


def path_of(services: Services, row: Row) -> Path:
    return services.settings.data_dir / "recordings" / row["file_name"]


def describe(row: Row) -> dict[str, Any]:
    return {
        "id": row["id"],
        "session": row["session_id"],
        "segment": row["segment"],
        "participants": json.loads(row["participants"]),
        "started_at": row["started_at"],
        "ended_at": row["ended_at"],
        "state": row["state"],
        "end_reason": row["end_reason"],
        "bytes": row["bytes"],
        "ciphertext_sha256": row["ciphertext_sha256"],
    }


async def listing(services: Services, therapist_id: int | None) -> list[dict[str, Any]]:
    async with services.db.transaction() as tx:
        return [describe(row) for row in await store.recordings_of(tx, therapist_id)]


async def owned(services: Services, therapist_id: int, recording_id: str) -> Row:
    async with services.db.transaction() as tx:
        row = await store.recording(tx, recording_id)
    if row is None or row["therapist_id"] != therapist_id or row["state"] == "deleted":
        raise Refusal(404, NOT_FOUND)
    if row["state"] == "writing":
        raise Refusal(409, "This recording is still being written.")
    return row


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
    reason = "interrupted: the server stopped while writing"

    def stranded(row: Row | None) -> bool:
        return row is not None and row["state"] == "writing" and row["id"] not in services.recordings.live

    async with services.db.transaction() as tx:
        candidates = [r for r in await store.writing(tx) if stranded(r)]
    for row in candidates:
        size, sha256 = await asyncio.to_thread(digest, path_of(services, row))
        async with services.db.transaction() as tx:
            if not stranded(await store.recording(tx, row["id"])):
                continue  # finished meanwhile
            now = services.clock.now()
            await store.finish_recording(tx, row["id"], "failed", reason, size, sha256, now)
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
