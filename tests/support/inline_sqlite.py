"""The real SQLite file, reached on the event loop's own thread.

aiosqlite answers from a thread of its own, so when a query completes depends on that thread's
timing. For repeatable schedules this stands in for `aiosqlite.Connection` (the few calls
`vsession.store.db` makes) and runs each statement inline, after a random number of yields: the DB
delays a schedule may put at every await of a query.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable, Generator, Iterable
from pathlib import Path
from typing import Any

from vsession.store.db import Database

Delay = Callable[[], Awaitable[None]]


class _Cursor:
    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self._cursor = cursor
        self.rowcount = cursor.rowcount
        self.lastrowid = cursor.lastrowid

    async def fetchone(self) -> sqlite3.Row | None:
        return self._cursor.fetchone()

    async def fetchall(self) -> list[sqlite3.Row]:
        return self._cursor.fetchall()


class _Statement:
    """Awaitable, and usable as `async with`, like aiosqlite's."""

    def __init__(self, conn: InlineConnection, sql: str, params: tuple[Any, ...]) -> None:
        self._conn, self._sql, self._params = conn, sql, params

    async def _run(self) -> _Cursor:
        await self._conn.delay()
        return _Cursor(self._conn.raw.execute(self._sql, self._params))

    def __await__(self) -> Generator[Any, None, _Cursor]:
        return self._run().__await__()

    async def __aenter__(self) -> _Cursor:
        return await self._run()

    async def __aexit__(self, *exc: object) -> None:
        return None


class InlineConnection:
    def __init__(self, path: Path, delay: Delay) -> None:
        self.raw = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.raw.row_factory = sqlite3.Row
        self.delay = delay

    def execute(self, sql: str, params: Iterable[Any] = ()) -> _Statement:
        return _Statement(self, sql, tuple(params))

    async def close(self) -> None:
        self.raw.close()


async def open_inline(path: Path, delay: Delay) -> Database:
    conn = InlineConnection(path, delay)
    for pragma in ("journal_mode=WAL", "foreign_keys=ON", "busy_timeout=5000", "synchronous=NORMAL"):
        conn.raw.execute(f"PRAGMA {pragma}")
    db = Database(conn)  # type: ignore[arg-type]
    await db.migrate()
    return db
