"""Recordings at rest: listing, deletion with a receipt in the audit chain, and retention.
The server never decrypts: it holds only the practice's public recipients."""

from __future__ import annotations

import contextlib
import json
import os
from typing import TYPE_CHECKING, Any

from vsession.errors import Refusal
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


async def delete(services: Services, row: Row, actor: str, reason: str) -> None:
    """Destroy the file, then write the receipt. The file is ciphertext for keys the server never
    had, so there is no key material here to destroy beyond the file itself."""
    path = path_of(services, row)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
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


async def apply_retention(services: Services) -> int:
    days = services.settings.retention_days
    if days == 0:
        return 0
    async with services.db.transaction() as tx:
        expired = await store.older_than(tx, services.clock.now() - days * 86400)
    for row in expired:
        await delete(services, row, "system", f"retention: older than {days} days")
    return len(expired)
