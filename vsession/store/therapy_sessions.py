"""Therapy sessions (what the UI calls a session) and their client seats.

Titles and client names arrive and leave sealed (vsession.rooms.personal): this module never sees
them in clear. The columns `title` and `display_name` are from before v5 and stay empty."""

from __future__ import annotations

from dataclasses import dataclass

from vsession.store.db import Row, Tx


@dataclass(frozen=True)
class TherapySession:
    id: str
    therapist_id: int
    title_sealed: bytes | None  # None once the session is past data retention
    starts_at: float
    duration_minutes: int
    state: str
    ended_at: float | None

    @property
    def ends_at(self) -> float:
        return self.starts_at + self.duration_minutes * 60

    @classmethod
    def from_row(cls, row: Row) -> TherapySession:
        return cls(
            row["id"],
            row["therapist_id"],
            row["title_sealed"],
            row["starts_at"],
            row["duration_minutes"],
            row["state"],
            row["ended_at"],
        )


@dataclass(frozen=True)
class Seat:
    session_id: str
    seat: int
    link_hash: str | None
    link_sealed: bytes | None
    link_issued_at: float
    redeemed_at: float | None
    guest_hash: str | None
    name_sealed: bytes | None  # the name the client gave; None before that and once erased
    state: str
    reuse_attempts: int

    @classmethod
    def from_row(cls, row: Row) -> Seat:
        return cls(**{f: row[f] for f in cls.__dataclass_fields__})


async def insert_session(
    tx: Tx, session_id: str, therapist_id: int, title: bytes, starts_at: float, duration: int, now: float
) -> None:
    await tx.execute(
        "INSERT INTO therapy_sessions"
        " (id, therapist_id, title, title_sealed, starts_at, duration_minutes, state, created_at)"
        " VALUES (?, ?, '', ?, ?, ?, 'open', ?)",
        (session_id, therapist_id, title, starts_at, duration, now),
    )


async def get(tx: Tx, session_id: str) -> TherapySession | None:
    row = await tx.fetchone("SELECT * FROM therapy_sessions WHERE id = ?", (session_id,))
    return TherapySession.from_row(row) if row else None


async def open_for_therapist(tx: Tx, therapist_id: int) -> list[TherapySession]:
    rows = await tx.fetchall(
        "SELECT * FROM therapy_sessions WHERE therapist_id = ? AND state = 'open' ORDER BY starts_at",
        (therapist_id,),
    )
    return [TherapySession.from_row(r) for r in rows]


async def overdue(tx: Tx, before: float) -> list[TherapySession]:
    rows = await tx.fetchall(
        "SELECT * FROM therapy_sessions WHERE state = 'open' AND starts_at + duration_minutes * 60 < ?",
        (before,),
    )
    return [TherapySession.from_row(r) for r in rows]


async def mark_ended(tx: Tx, session_id: str, now: float) -> None:
    await tx.execute(
        "UPDATE therapy_sessions SET state = 'ended', ended_at = ? WHERE id = ?", (now, session_id)
    )
    # Every link and guest cookie of the session stops working at once.
    await tx.execute(
        "UPDATE seats SET link_hash = NULL, link_sealed = NULL, guest_hash = NULL WHERE session_id = ?",
        (session_id,),
    )


async def insert_seat(
    tx: Tx, session_id: str, seat: int, link_hash: str, link_sealed: bytes, now: float
) -> None:
    await tx.execute(
        "INSERT INTO seats (session_id, seat, link_hash, link_sealed, link_issued_at, state)"
        " VALUES (?, ?, ?, ?, ?, 'invited')",
        (session_id, seat, link_hash, link_sealed, now),
    )


async def seats_of(tx: Tx, session_id: str) -> list[Seat]:
    rows = await tx.fetchall("SELECT * FROM seats WHERE session_id = ? ORDER BY seat", (session_id,))
    return [Seat.from_row(r) for r in rows]


async def seat(tx: Tx, session_id: str, number: int) -> Seat | None:
    row = await tx.fetchone("SELECT * FROM seats WHERE session_id = ? AND seat = ?", (session_id, number))
    return Seat.from_row(row) if row else None


async def seat_by_link(tx: Tx, link_hash: str) -> Seat | None:
    row = await tx.fetchone("SELECT * FROM seats WHERE link_hash = ?", (link_hash,))
    return Seat.from_row(row) if row else None


async def seat_by_guest(tx: Tx, guest_hash: str) -> Seat | None:
    row = await tx.fetchone("SELECT * FROM seats WHERE guest_hash = ?", (guest_hash,))
    return Seat.from_row(row) if row else None


async def reissue(
    tx: Tx, session_id: str, number: int, link_hash: str, link_sealed: bytes, now: float
) -> None:
    """A new link revokes the old one and any device that redeemed it."""
    await tx.execute(
        "UPDATE seats SET link_hash = ?, link_sealed = ?, link_issued_at = ?, redeemed_at = NULL,"
        " guest_hash = NULL, state = 'invited', name_sealed = NULL, reuse_attempts = 0"
        " WHERE session_id = ? AND seat = ?",
        (link_hash, link_sealed, now, session_id, number),
    )


async def redeem(tx: Tx, session_id: str, number: int, guest_hash: str, now: float) -> bool:
    changed = await tx.execute(
        "UPDATE seats SET redeemed_at = ?, guest_hash = ?, state = 'joined'"
        " WHERE session_id = ? AND seat = ? AND redeemed_at IS NULL",
        (now, guest_hash, session_id, number),
    )
    return changed == 1


async def count_reuse(tx: Tx, session_id: str, number: int) -> None:
    await tx.execute(
        "UPDATE seats SET reuse_attempts = reuse_attempts + 1 WHERE session_id = ? AND seat = ?",
        (session_id, number),
    )


async def set_state(
    tx: Tx, session_id: str, number: int, state: str, name_sealed: bytes | None = None
) -> None:
    if name_sealed is None:
        await tx.execute(
            "UPDATE seats SET state = ? WHERE session_id = ? AND seat = ?", (state, session_id, number)
        )
    else:
        await tx.execute(
            "UPDATE seats SET state = ?, name_sealed = ? WHERE session_id = ? AND seat = ?",
            (state, name_sealed, session_id, number),
        )


async def revoke_guest(tx: Tx, session_id: str, number: int, state: str) -> None:
    """Denied or removed: the device's cookie dies with it; only a reissued link brings them back."""
    await tx.execute(
        "UPDATE seats SET state = ?, guest_hash = NULL, link_hash = NULL, link_sealed = NULL"
        " WHERE session_id = ? AND seat = ?",
        (state, session_id, number),
    )


async def erase_names(tx: Tx, ended_before: float) -> int:
    """Client names of sessions that ended before the cutoff: at their scheduled end, or earlier
    if the therapist ended them sooner."""
    return await tx.execute(
        "UPDATE seats SET name_sealed = NULL WHERE name_sealed IS NOT NULL AND session_id IN"
        " (SELECT id FROM therapy_sessions WHERE state = 'ended'"
        " AND min(ended_at, starts_at + duration_minutes * 60) < ?)",
        (ended_before,),
    )


async def reduce_ended(tx: Tx, ended_before: float) -> int:
    """Past data retention an ended session keeps only what its consent and recording rows refer to:
    its id, therapist and times. The title and the seats go."""
    reduced = await tx.execute(
        "UPDATE therapy_sessions SET title_sealed = NULL"
        " WHERE state = 'ended' AND ended_at < ? AND title_sealed IS NOT NULL",
        (ended_before,),
    )
    await tx.execute(
        "DELETE FROM seats WHERE session_id IN"
        " (SELECT id FROM therapy_sessions WHERE state = 'ended' AND ended_at < ?)",
        (ended_before,),
    )
    return reduced


async def legacy_titles(tx: Tx) -> list[tuple[str, str]]:
    """(id, title) of rows written in clear before v5."""
    rows = await tx.fetchall("SELECT id, title FROM therapy_sessions WHERE title != ''")
    return [(r["id"], r["title"]) for r in rows]


async def replace_legacy_title(tx: Tx, session_id: str, title_sealed: bytes) -> None:
    await tx.execute(
        "UPDATE therapy_sessions SET title = '', title_sealed = ? WHERE id = ?", (title_sealed, session_id)
    )


async def legacy_names(tx: Tx) -> list[tuple[str, int, str]]:
    """(session id, seat, name) of names written in clear before v5."""
    rows = await tx.fetchall("SELECT session_id, seat, display_name FROM seats WHERE display_name != ''")
    return [(r["session_id"], r["seat"], r["display_name"]) for r in rows]


async def replace_legacy_name(tx: Tx, session_id: str, number: int, name_sealed: bytes) -> None:
    await tx.execute(
        "UPDATE seats SET display_name = '', name_sealed = ? WHERE session_id = ? AND seat = ?",
        (name_sealed, session_id, number),
    )
