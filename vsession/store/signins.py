"""Server-side rows behind the therapist's sign-in cookie (the table keeps its first name,
web_sessions: "session" in code means a therapy session)."""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass

from vsession.store.db import Row, Tx


@dataclass(frozen=True)
class SignIn:
    token_hash: str
    therapist_id: int
    stage: str
    created_at: float
    last_seen: float
    totp_at: float
    # Derived from the cookie by vsession.auth.signins.lookup and never stored, so a copy of the
    # database or its WAL holds no CSRF token that would pass.
    csrf_token: str = ""

    @classmethod
    def from_row(cls, row: Row) -> SignIn:
        return cls(**{k: row[k] for k in row.keys()})


async def insert(tx: Tx, token_hash: str, therapist_id: int, stage: str, now: float, totp_at: float) -> None:
    await tx.execute(
        "INSERT INTO web_sessions (token_hash, therapist_id, stage, created_at, last_seen, totp_at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (token_hash, therapist_id, stage, now, now, totp_at),
    )


async def get(tx: Tx, token_hash: str) -> SignIn | None:
    row = await tx.fetchone("SELECT * FROM web_sessions WHERE token_hash = ?", (token_hash,))
    return SignIn.from_row(row) if row else None


async def get_many(tx: Tx, token_hashes: Collection[str]) -> dict[str, SignIn]:
    """The rows that still exist among these, by token hash (one indexed query for a sweep)."""
    rows = await tx.fetchall(
        "SELECT * FROM web_sessions WHERE token_hash IN (SELECT value FROM json_each(?))",
        (json.dumps(list(token_hashes)),),
    )
    return {row["token_hash"]: SignIn.from_row(row) for row in rows}


async def touch(tx: Tx, token_hash: str, now: float) -> None:
    await tx.execute("UPDATE web_sessions SET last_seen = ? WHERE token_hash = ?", (now, token_hash))


async def set_totp_at(tx: Tx, token_hash: str, now: float) -> None:
    await tx.execute("UPDATE web_sessions SET totp_at = ? WHERE token_hash = ?", (now, token_hash))


async def delete(tx: Tx, token_hash: str) -> None:
    await tx.execute("DELETE FROM web_sessions WHERE token_hash = ?", (token_hash,))


async def delete_for_therapist(tx: Tx, therapist_id: int) -> None:
    await tx.execute("DELETE FROM web_sessions WHERE therapist_id = ?", (therapist_id,))
