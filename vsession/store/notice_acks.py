"""Clients' acknowledgements of the privacy notice: one row per device and notice text, never updated."""

from __future__ import annotations

from vsession.store.db import Tx


async def insert(
    tx: Tx, session_id: str, seat: int, guest_hash: str, version: str, sha256: str, now: float
) -> None:
    await tx.execute(
        "INSERT INTO notice_acks (session_id, seat, guest_hash, notice_version, notice_sha256, at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (session_id, seat, guest_hash, version, sha256, now),
    )


async def exists(tx: Tx, guest_hash: str, sha256: str) -> bool:
    row = await tx.fetchone(
        "SELECT 1 FROM notice_acks WHERE guest_hash = ? AND notice_sha256 = ?", (guest_hash, sha256)
    )
    return row is not None
