"""One aiosqlite connection per process, WAL and foreign keys on, transactions serialised."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiosqlite

from vsession.store.migrations import MIGRATIONS

Row = aiosqlite.Row


class Database:
    """All access goes through `transaction()` so a check and its write cannot interleave."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn
        self._lock = asyncio.Lock()

    @classmethod
    async def open(cls, path: Path) -> Database:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = await aiosqlite.connect(path, isolation_level=None)
        conn.row_factory = aiosqlite.Row
        await conn.execute("PRAGMA journal_mode=WAL")
        await conn.execute("PRAGMA foreign_keys=ON")
        await conn.execute("PRAGMA busy_timeout=5000")
        await conn.execute("PRAGMA synchronous=FULL")
        # Deleted or overwritten content is zeroed, so erased personal data leaves no trace in free space.
        await conn.execute("PRAGMA secure_delete=ON")
        db = cls(conn)
        await db.migrate()
        return db

    async def close(self) -> None:
        await self._conn.close()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Tx]:
        """BEGIN IMMEDIATE: take the write lock up front, so read-then-write is atomic."""
        async with self._lock:
            begin = asyncio.ensure_future(self._conn.execute("BEGIN IMMEDIATE"))
            try:
                await asyncio.shield(begin)
            except asyncio.CancelledError:
                # aiosqlite runs the BEGIN in its thread regardless; end it before letting go of the
                # lock, or every later transaction fails ("cannot start a transaction within ...").
                with contextlib.suppress(Exception):
                    await begin
                    await asyncio.shield(self._conn.execute("ROLLBACK"))
                raise
            try:
                yield Tx(self._conn)
            except BaseException:
                await asyncio.shield(self._conn.execute("ROLLBACK"))
                raise
            await asyncio.shield(self._conn.execute("COMMIT"))

    async def checkpoint(self) -> None:
        """Copy the WAL into the database and empty it: the WAL keeps old versions of every page
        written since the last checkpoint, erased data included, until it is reset."""
        async with self._lock:
            await asyncio.shield(self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)"))

    async def fetchone(self, sql: str, params: Iterable[Any] = ()) -> Row | None:
        async with self.transaction() as tx:
            return await tx.fetchone(sql, params)

    async def fetchall(self, sql: str, params: Iterable[Any] = ()) -> list[Row]:
        async with self.transaction() as tx:
            return await tx.fetchall(sql, params)

    async def migrate(self) -> None:
        async with self.transaction() as tx:
            row = await tx.fetchone("PRAGMA user_version")
            version = row[0] if row else 0
            if version > len(MIGRATIONS):
                raise RuntimeError(
                    f"database schema v{version} is newer than this vsession (v{len(MIGRATIONS)})"
                )
            for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                for statement in _statements(script):
                    await tx.execute(statement)
                await tx.execute(f"PRAGMA user_version = {number}")


class Tx:
    """The handle a transaction hands out; domain modules take it so callers control atomicity."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    async def execute(self, sql: str, params: Iterable[Any] = ()) -> int:
        cursor = await self._conn.execute(sql, tuple(params))
        return cursor.rowcount

    async def insert(self, sql: str, params: Iterable[Any] = ()) -> int:
        cursor = await self._conn.execute(sql, tuple(params))
        return int(cursor.lastrowid or 0)

    async def fetchone(self, sql: str, params: Iterable[Any] = ()) -> Row | None:
        async with self._conn.execute(sql, tuple(params)) as cursor:
            return await cursor.fetchone()

    async def fetchall(self, sql: str, params: Iterable[Any] = ()) -> list[Row]:
        async with self._conn.execute(sql, tuple(params)) as cursor:
            return list(await cursor.fetchall())


def _statements(script: str) -> list[str]:
    """Split a migration into statements; triggers keep their inner semicolons."""
    return [s.strip() for s in script.split("\n-- ;\n") if s.strip()]
