"""Therapist accounts and their recovery codes. A row is never deleted, so an id (therapist:<id> in
the audit log) names one person for good; an account leaves by being disabled."""

from __future__ import annotations

from dataclasses import dataclass

from vsession.store.db import Row, Tx


@dataclass(frozen=True)
class Therapist:
    id: int
    username: str
    display_name: str
    password_hash: str
    totp_secret: bytes
    totp_enrolled: bool
    totp_last_step: int
    is_admin: bool
    disabled: bool

    @classmethod
    def from_row(cls, row: Row) -> Therapist:
        return cls(
            id=row["id"],
            username=row["username"],
            display_name=row["display_name"],
            password_hash=row["password_hash"],
            totp_secret=row["totp_secret"],
            totp_enrolled=bool(row["totp_enrolled"]),
            totp_last_step=row["totp_last_step"],
            is_admin=bool(row["is_admin"]),
            disabled=bool(row["disabled"]),
        )


async def by_username(tx: Tx, username: str) -> Therapist | None:
    row = await tx.fetchone("SELECT * FROM therapists WHERE username = ?", (username,))
    return Therapist.from_row(row) if row else None


async def by_id(tx: Tx, therapist_id: int) -> Therapist | None:
    row = await tx.fetchone("SELECT * FROM therapists WHERE id = ?", (therapist_id,))
    return Therapist.from_row(row) if row else None


async def all_therapists(tx: Tx) -> list[Therapist]:
    return [Therapist.from_row(r) for r in await tx.fetchall("SELECT * FROM therapists ORDER BY id")]


async def count(tx: Tx) -> int:
    row = await tx.fetchone("SELECT count(*) FROM therapists")
    return int(row[0]) if row else 0


async def insert(
    tx: Tx,
    username: str,
    display_name: str,
    password_hash: str,
    totp_secret: bytes,
    is_admin: bool,
    now: float,
) -> int:
    return await tx.insert(
        "INSERT INTO therapists (username, display_name, password_hash, totp_secret, is_admin, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (username, display_name, password_hash, totp_secret, int(is_admin), now),
    )


async def set_totp_step(tx: Tx, therapist_id: int, step: int) -> None:
    await tx.execute("UPDATE therapists SET totp_last_step = ? WHERE id = ?", (step, therapist_id))


async def mark_enrolled(tx: Tx, therapist_id: int, step: int) -> None:
    await tx.execute(
        "UPDATE therapists SET totp_enrolled = 1, totp_last_step = ? WHERE id = ?", (step, therapist_id)
    )


async def reset_totp(tx: Tx, therapist_id: int, totp_secret: bytes) -> None:
    await tx.execute(
        "UPDATE therapists SET totp_secret = ?, totp_enrolled = 0, totp_last_step = -1 WHERE id = ?",
        (totp_secret, therapist_id),
    )
    await tx.execute("DELETE FROM recovery_codes WHERE therapist_id = ?", (therapist_id,))


async def set_password(tx: Tx, therapist_id: int, password_hash: str) -> None:
    await tx.execute("UPDATE therapists SET password_hash = ? WHERE id = ?", (password_hash, therapist_id))


async def set_disabled(tx: Tx, therapist_id: int, disabled: bool) -> None:
    await tx.execute("UPDATE therapists SET disabled = ? WHERE id = ?", (int(disabled), therapist_id))


async def replace_recovery_codes(tx: Tx, therapist_id: int, code_hashes: list[str]) -> None:
    await tx.execute("DELETE FROM recovery_codes WHERE therapist_id = ?", (therapist_id,))
    for code_hash in code_hashes:
        await tx.execute(
            "INSERT INTO recovery_codes (therapist_id, code_hash) VALUES (?, ?)", (therapist_id, code_hash)
        )


async def use_recovery_code(tx: Tx, therapist_id: int, code_hash: str, now: float) -> bool:
    changed = await tx.execute(
        "UPDATE recovery_codes SET used_at = ? WHERE therapist_id = ? AND code_hash = ? AND used_at IS NULL",
        (now, therapist_id, code_hash),
    )
    return changed == 1


async def recovery_codes_left(tx: Tx, therapist_id: int) -> int:
    row = await tx.fetchone(
        "SELECT count(*) FROM recovery_codes WHERE therapist_id = ? AND used_at IS NULL", (therapist_id,)
    )
    return int(row[0]) if row else 0
