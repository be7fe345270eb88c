"""What a thief who copies the data folder gets: its files' raw bytes, read as they lie on disk, and
entries written the way versions before v6 wrote them."""

from __future__ import annotations

import shutil
import sqlite3
from contextlib import closing
from pathlib import Path

from vsession.audit.chain import GENESIS, canonical, link

ATTACKER_IP = "203.0.113.77"  # TEST-NET-3: an address no real client has


def checkpointed_bytes(db_path: Path) -> bytes:
    """The database's bytes after the WAL is folded in and emptied (no connection may be open)."""
    with closing(sqlite3.connect(db_path)) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return raw_bytes(db_path.parent)


def raw_bytes(folder: Path) -> bytes:
    """Every file under the folder, concatenated."""
    return b"".join(p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file())


def copy_data(data_dir: Path, to: Path, keys: bool) -> Path:
    """Copy the folder the way a thief (or a careless backup) would: file by file, as they are
    right now, the WAL and shared-memory files included, while the server may be writing."""
    shutil.copytree(data_dir, to, ignore=None if keys else shutil.ignore_patterns("keys"))
    return to


def write_legacy_entries(conn: sqlite3.Connection, key: bytes, entries: list[tuple[str, str, str]]) -> None:
    """(actor, action, outcome) entries chained the way versions before v6 did it, address and all,
    after whatever the log holds."""
    last = conn.execute("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
    seq, prev = last if last else (0, GENESIS)
    for actor, action, outcome in entries:
        seq += 1
        ts = f"2027-01-15T08:{seq:02d}:00.000Z"
        prev = link(key, prev, canonical(seq, ts, actor, action, "session:x", outcome, "{}"))
        conn.execute(
            "INSERT INTO audit_log (seq, ts, actor, action, object, outcome, details, hash)"
            " VALUES (?, ?, ?, ?, 'session:x', ?, '{}', ?)",
            (seq, ts, actor, action, outcome, prev),
        )
    conn.commit()
