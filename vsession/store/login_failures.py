"""Failure counters for sign-in throttling: per username (existing or not) and per IP."""

from __future__ import annotations

from vsession.store.db import Row, Tx


async def for_username(tx: Tx, username: str) -> Row | None:
    return await tx.fetchone("SELECT * FROM login_failures WHERE username = ?", (username,))


async def record(tx: Tx, username: str, count: int, now: float, locked_until: float) -> None:
    await tx.execute(
        "INSERT INTO login_failures (username, count, last_failure, locked_until) VALUES (?, ?, ?, ?)"
        " ON CONFLICT(username) DO UPDATE SET count = excluded.count, last_failure = excluded.last_failure,"
        " locked_until = excluded.locked_until",
        (username, count, now, locked_until),
    )


async def clear(tx: Tx, username: str) -> None:
    await tx.execute("DELETE FROM login_failures WHERE username = ?", (username,))


async def forget(tx: Tx, last_before: float, now: float) -> None:
    """Drop counters with no failure since `last_before` whose lock (if any) has lifted."""
    await tx.execute(
        "DELETE FROM login_failures WHERE last_failure < ? AND locked_until <= ?", (last_before, now)
    )


async def ip_count(tx: Tx, ip: str, since: float) -> int:
    row = await tx.fetchone("SELECT count(*) FROM ip_failures WHERE ip = ? AND at > ?", (ip, since))
    return int(row[0]) if row else 0


async def ip_record(tx: Tx, ip: str, now: float, forget_before: float) -> None:
    await tx.execute("DELETE FROM ip_failures WHERE at <= ?", (forget_before,))
    await tx.execute("INSERT INTO ip_failures (ip, at) VALUES (?, ?)", (ip, now))
