"""What a backup holds, taken from a live data folder: a consistent image of the database, the key
folder's files and a manifest of the recordings. Blocking (SQLite, file reads): run it in a thread.

Nothing is written to disk here: the image is made with SQLite's online backup API into an
in-memory database and serialised, so the server keeps writing while it is taken (WAL readers
block no one) and the plaintext never touches a temporary file. The cost is memory: twice the
database's size while the image is made (a 205 MB database peaks at about 420 MB resident).
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vsession.config import Settings
from vsession.recording.service import recordings_dir
from vsession.store.migrations import MIGRATIONS

# SQLite file header bytes 18 and 19 (https://www.sqlite.org/fileformat.html): 2 marks a WAL
# database. The image has no WAL beside it, and SQLite opens a WAL-marked image neither from
# memory nor reliably without its -shm file; 1 (rollback journal) opens anywhere, and the server
# switches the restored file back to WAL when it opens it.
_WRITE_VERSION, _READ_VERSION = 18, 19
_ROLLBACK = 1
# An in-memory database of SQLite's memdb VFS, private to its connection (no leading "/"). Unlike
# ":memory:" it serialises without a copy, so the image costs twice the database's size, not 3-4x.
MEMORY = "file:backup-image?vfs=memdb"
_BUSY_SECONDS = 10.0


class SnapshotError(Exception):
    """The data folder cannot be backed up as it is; the message says why, in one line."""


@dataclass(frozen=True)
class Snapshot:
    database: bytes
    schema: int
    keys: dict[str, bytes]  # file name in the key folder -> content
    recordings: list[dict[str, Any]]


def take(settings: Settings) -> Snapshot:
    if not settings.db_path.is_file():
        raise SnapshotError(f"no database at {settings.db_path}: check data_dir")
    keys = key_files(settings.key_folder)  # before the database is opened: a refusal touches nothing
    database = database_image(settings.db_path)
    schema = schema_of(database)
    if schema > len(MIGRATIONS):
        raise SnapshotError(
            f"the database is schema v{schema}, newer than this vsession (v{len(MIGRATIONS)})"
        )
    return Snapshot(database, schema, keys, manifest(database, settings))


def database_image(path: Path) -> bytes:
    """One read transaction's view of the database, as the bytes of a standalone SQLite file."""
    # mode=rw: never create an empty database where the admin mistyped the folder.
    uri = f"{path.resolve().as_uri()}?mode=rw"
    with closing(sqlite3.connect(uri, uri=True, timeout=_BUSY_SECONDS)) as src:
        with closing(sqlite3.connect(MEMORY, uri=True)) as memory:
            # pages=-1: all pages in one step, hence one read transaction and one consistent view.
            src.backup(memory, pages=-1)
            raw = memory.serialize()
    with memoryview(raw) as view:
        return b"".join((view[:_WRITE_VERSION], bytes((_ROLLBACK, _ROLLBACK)), view[_READ_VERSION + 1 :]))


def open_image(image: bytes | memoryview) -> sqlite3.Connection:
    """A private in-memory database holding the image (changes to it stay in memory)."""
    conn = sqlite3.connect(":memory:")
    try:
        conn.deserialize(image)
    except sqlite3.Error:
        conn.close()
        raise
    conn.row_factory = sqlite3.Row
    return conn


def schema_of(image: bytes) -> int:
    with closing(open_image(image)) as conn:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])


def key_files(folder: Path) -> dict[str, bytes]:
    """Every file in the key folder. Fail closed: a backup that silently lacks a key could not be
    restored, so anything that is not a plain file stops it."""
    if not folder.is_dir():
        raise SnapshotError(f"no key folder at {folder}: check key_dir and data_dir")
    keys: dict[str, bytes] = {}
    for entry in sorted(folder.iterdir()):
        if entry.is_symlink() or not entry.is_file():
            raise SnapshotError(f"{entry} in the key folder is not a regular file; move it elsewhere")
        keys[entry.name] = entry.read_bytes()
    if not keys:
        raise SnapshotError(f"the key folder {folder} is empty: check key_dir and data_dir")
    return keys


def manifest(image: bytes, settings: Settings) -> list[dict[str, Any]]:
    """The recordings the image knows of. Their files are age ciphertext already and can be large,
    so they are not in the backup: `present` says whether each was on disk when it was taken."""
    folder = recordings_dir(settings)
    with closing(open_image(image)) as conn:
        if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'recordings'").fetchone():
            return []
        rows = conn.execute(
            "SELECT id, session_id, segment, state, bytes, ciphertext_sha256, file_name"
            " FROM recordings ORDER BY started_at, id"
        ).fetchall()
    return [
        {
            "id": row["id"],
            "session": row["session_id"],
            "segment": row["segment"],
            "state": row["state"],
            "bytes": row["bytes"],
            "ciphertext_sha256": row["ciphertext_sha256"],
            "file_name": row["file_name"],
            "present": plain_name(row["file_name"]) and (folder / row["file_name"]).is_file(),
        }
        for row in rows
    ]


def plain_name(name: Any) -> bool:
    """A bare file name, so joining it to a folder cannot leave the folder."""
    return isinstance(name, str) and name not in ("", ".", "..") and "/" not in name and "\0" not in name
