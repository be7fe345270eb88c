"""What a refused request may change in the database, and a digest of everything else.

A refusal (a 4xx) and any GET, HEAD or OPTIONS must leave the data as it was, except for the records
a refusal exists to leave behind:
- audit_log: refusals are audited (a failed sign-in, a throttled one, an invalid or reused link, a
  forged consent answer). On a refusal, every new entry must say so (its outcome is not "ok"), but
  for `login.lockout`, the system's own note that the failures just locked an account;
- audit_personal: the sealed address of those same entries (vsession/audit/personal.py);
- login_failures and ip_failures: the failure counts the lockout and the throttles count;
- web_sessions.last_seen: the door touches a live sign-in before the handler behind it refuses the
  request: activity of a signed-in page, as the heartbeat is;
- seats.reuse_attempts: a second device trying a used link, which the therapist is shown.
Everything else is compared, every table (new ones included) and every column, row by row."""

from __future__ import annotations

import hashlib
import sqlite3
from dataclasses import dataclass
from pathlib import Path

REFUSAL_MAY_CHANGE_TABLES = frozenset({"audit_log", "audit_personal", "login_failures", "ip_failures"})
REFUSAL_MAY_CHANGE_COLUMNS = {
    "web_sessions": frozenset({"last_seen"}),
    "seats": frozenset({"reuse_attempts"}),
}
REFUSAL_AUDIT_OK = frozenset({"login.lockout"})


@dataclass(frozen=True)
class Snapshot:
    tables: dict[str, str]  # table -> SHA-256 of its compared rows
    audit_seq: int  # the last audit entry's sequence number

    def changed(self, later: Snapshot) -> list[str]:
        names = sorted(self.tables.keys() | later.tables.keys())
        return [name for name in names if self.tables.get(name) != later.tables.get(name)]


class Digester:
    """Reads the app's SQLite file through a second, read-only connection (WAL: it sees each
    committed state whole)."""

    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        self._schema = -1
        self._selects: dict[str, str] = {}

    def close(self) -> None:
        self.conn.close()

    def _compared(self) -> dict[str, str]:
        """A SELECT of the compared columns of each compared table, made again when the schema changes."""
        version = self.conn.execute("PRAGMA schema_version").fetchone()[0]
        if version != self._schema:
            self._schema, self._selects = version, {}
            names = [r[0] for r in self.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            for name in names:
                if name in REFUSAL_MAY_CHANGE_TABLES:
                    continue
                columns = [r[1] for r in self.conn.execute(f'PRAGMA table_info("{name}")')]
                kept = ", ".join(
                    f'"{c}"' for c in columns if c not in REFUSAL_MAY_CHANGE_COLUMNS.get(name, ())
                )
                self._selects[name] = f'SELECT {kept} FROM "{name}" ORDER BY {kept}'
        return self._selects

    def snapshot(self) -> Snapshot:
        with self.conn:  # one read transaction: every table as of the same commit
            self.conn.execute("BEGIN")
            tables = {}
            for name, select in self._compared().items():
                tables[name] = hashlib.sha256(repr(self.conn.execute(select).fetchall()).encode()).hexdigest()
            row = self.conn.execute("SELECT coalesce(max(seq), 0) FROM audit_log").fetchone()
        return Snapshot(tables, int(row[0]))

    def audit_since(self, seq: int) -> list[tuple[str, str, str]]:
        """(action, object, outcome) of the entries after `seq`."""
        rows = self.conn.execute(
            "SELECT action, object, outcome FROM audit_log WHERE seq > ? ORDER BY seq", (seq,)
        )
        return [tuple(r) for r in rows]


def refusal_audit_problems(entries: list[tuple[str, str, str]]) -> list[str]:
    return [
        f"audit entry {action} {obj!r} outcome {outcome!r}"
        for action, obj, outcome in entries
        if outcome == "ok" and action not in REFUSAL_AUDIT_OK
    ]
