"""One-time links that let a new therapist create an account."""

from __future__ import annotations

from vsession.store.db import Row, Tx


async def insert(tx: Tx, token_hash: str, created_by: int | None, is_admin: bool, expires_at: float) -> None:
    await tx.execute(
        "INSERT INTO setup_links (token_hash, created_by, is_admin, expires_at) VALUES (?, ?, ?, ?)",
        (token_hash, created_by, int(is_admin), expires_at),
    )


async def usable(tx: Tx, token_hash: str, now: float) -> Row | None:
    return await tx.fetchone(
        "SELECT * FROM setup_links WHERE token_hash = ? AND used_at IS NULL AND expires_at > ?",
        (token_hash, now),
    )


async def mark_used(tx: Tx, token_hash: str, now: float) -> bool:
    changed = await tx.execute(
        "UPDATE setup_links SET used_at = ? WHERE token_hash = ? AND used_at IS NULL", (now, token_hash)
    )
    return changed == 1
