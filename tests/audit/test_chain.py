"""The audit chain exposes someone editing the database file directly.

The attacker here has the SQLite file and the sqlite3 module, drops the append-only triggers
and rewrites rows; they do not have the HMAC key, which lives outside the DB.
"""

import sqlite3
import stat
import subprocess
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import pytest

from tests.support.cli import run_vsession
from vsession.audit import AuditLog, Checkpoint, head, verify
from vsession.audit.chain import canonical, link
from vsession.config import load_settings
from vsession.keyfile import load_or_create_key
from vsession.store import Database

REPO = Path(__file__).resolve().parents[2]
KEY = bytes(range(32))


def audit_key_path(settings):
    # Where the server and the CLI keep the HMAC key: the data dir's key folder, not the DB.
    return settings.key_folder / "audit-hmac.key"


ENTRIES = 6
COLUMNS = ("ts", "actor", "action", "object", "outcome", "details", "hash")


class StepClock:
    """Each entry gets its own timestamp, so no two rows have the same content."""

    def __init__(self) -> None:
        self.t = 1_800_000_000.0

    def now(self) -> float:
        self.t += 1.5
        return self.t


async def write_entries(path: Path, key: bytes = KEY, count: int = ENTRIES) -> Checkpoint:
    db = await Database.open(path)
    try:
        log = AuditLog(key, StepClock())
        for n in range(1, count + 1):
            await log.record(
                db,
                actor=f"therapist:{n % 2 + 1}",
                action="session.create" if n % 2 else "recording.consent",
                obj=f"session:{n}",
                outcome="ok" if n % 3 else "denied",
                details={"n": n, "note": f"entry {n}"},
            )
        point = await head(db)
    finally:
        await db.close()
    assert point is not None
    return point


async def check(path: Path, checkpoint: Checkpoint | None = None, key: bytes = KEY):
    db = await Database.open(path)
    try:
        return await verify(db, key, checkpoint)
    finally:
        await db.close()


@contextmanager
def attacker(path: Path) -> Iterator[sqlite3.Connection]:
    """Direct access to the file, with the triggers out of the way."""
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("DROP TRIGGER audit_log_no_update")
        conn.execute("DROP TRIGGER audit_log_no_delete")
        yield conn
        conn.commit()


def row(conn: sqlite3.Connection, seq: int) -> tuple:
    found = conn.execute(f"SELECT {', '.join(COLUMNS)} FROM audit_log WHERE seq = ?", (seq,)).fetchone()
    assert found is not None
    return found


def put(conn: sqlite3.Connection, seq: int, values: tuple, columns: tuple[str, ...] = COLUMNS) -> None:
    assignments = ", ".join(f"{c} = ?" for c in columns)
    conn.execute(f"UPDATE audit_log SET {assignments} WHERE seq = ?", (*values, seq))


def renumber_from(conn: sqlite3.Connection, first: int, by: int) -> None:
    # Two steps so the primary key never collides half-way.
    conn.execute("UPDATE audit_log SET seq = -seq WHERE seq >= ?", (first,))
    conn.execute("UPDATE audit_log SET seq = -seq + ? WHERE seq < 0", (by,))


@pytest.fixture
async def db_path(tmp_path: Path) -> Path:
    path = tmp_path / "data" / "vsession.sqlite3"
    await write_entries(path)
    return path


async def test_intact_log_verifies(db_path: Path) -> None:
    result = await check(db_path)
    assert result.ok, result
    assert result.entries == ENTRIES
    assert result.first_bad is None
    assert result.head is not None and result.head.seq == ENTRIES


async def test_the_application_cannot_update_or_delete(db_path: Path) -> None:
    with closing(sqlite3.connect(db_path)) as conn:
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            conn.execute("UPDATE audit_log SET actor = 'x' WHERE seq = 1")
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            conn.execute("DELETE FROM audit_log WHERE seq = 1")


async def test_a_different_key_fails_from_the_first_entry(db_path: Path) -> None:
    result = await check(db_path, key=bytes(32))
    assert not result.ok
    assert result.first_bad == 1


@pytest.mark.parametrize(("column", "value"), [("details", '{"n":3,"note":"nothing here"}'), ("actor", "x")])
async def test_edited_entry(db_path: Path, column: str, value: str) -> None:
    with attacker(db_path) as conn:
        put(conn, 3, (value,), (column,))
    result = await check(db_path)
    assert not result.ok
    assert result.first_bad == 3
    assert result.entries == 2  # the entries before it are still vouched for


async def test_edited_entry_with_the_chain_recomputed_without_the_key(db_path: Path) -> None:
    # A plain hash chain could be rebuilt after an edit; the HMAC needs the key the attacker lacks.
    guess = b"\x00" * 32
    with attacker(db_path) as conn:
        put(conn, 3, ("denied",), ("outcome",))
        prev = row(conn, 2)[-1]
        for seq in range(3, ENTRIES + 1):
            ts, actor, action, obj, outcome, details, _ = row(conn, seq)
            forged = link(guess, prev, canonical(seq, ts, actor, action, obj, outcome, details))
            put(conn, seq, (forged,), ("hash",))
            prev = forged
    result = await check(db_path)
    assert not result.ok
    assert result.first_bad == 3


async def test_deleted_middle_entry(db_path: Path) -> None:
    with attacker(db_path) as conn:
        conn.execute("DELETE FROM audit_log WHERE seq = 4")
    result = await check(db_path)
    assert not result.ok
    assert result.first_bad == 4


async def test_deleted_first_entry(db_path: Path) -> None:
    with attacker(db_path) as conn:
        conn.execute("DELETE FROM audit_log WHERE seq = 1")
    result = await check(db_path)
    assert not result.ok
    assert result.first_bad == 1


async def test_deleted_middle_entry_with_the_rest_renumbered(db_path: Path) -> None:
    with attacker(db_path) as conn:
        conn.execute("DELETE FROM audit_log WHERE seq = 4")
        renumber_from(conn, 5, -1)
    result = await check(db_path)
    assert not result.ok
    assert result.first_bad == 4


@pytest.mark.parametrize("with_hashes", [False, True], ids=["content-only", "with-hashes"])
async def test_reordered_entries(db_path: Path, with_hashes: bool) -> None:
    columns = COLUMNS if with_hashes else COLUMNS[:-1]
    with attacker(db_path) as conn:
        second, fifth = row(conn, 2), row(conn, 5)
        put(conn, 2, fifth[: len(columns)], columns)
        put(conn, 5, second[: len(columns)], columns)
    result = await check(db_path)
    assert not result.ok
    assert result.first_bad == 2


async def test_reordered_by_renumbering_whole_rows(db_path: Path) -> None:
    with attacker(db_path) as conn:
        conn.execute("UPDATE audit_log SET seq = 100 WHERE seq = 3")
        conn.execute("UPDATE audit_log SET seq = 3 WHERE seq = 4")
        conn.execute("UPDATE audit_log SET seq = 4 WHERE seq = 100")
    result = await check(db_path)
    assert not result.ok
    assert result.first_bad == 3


async def test_inserted_entry_in_the_middle(db_path: Path) -> None:
    with attacker(db_path) as conn:
        renumber_from(conn, 4, 1)
        ts, *_ = row(conn, 3)
        conn.execute(
            "INSERT INTO audit_log (seq, ts, actor, action, object, outcome, details, hash)"
            " VALUES (4, ?, 'therapist:1', 'recording.consent', 'session:3', 'ok', '{}', ?)",
            (ts, "ab" * 32),
        )
    result = await check(db_path)
    assert not result.ok
    assert result.first_bad == 4


async def test_inserted_copy_of_a_genuine_entry(db_path: Path) -> None:
    # Even a row with a hash the key once produced fails at its new place in the chain.
    with attacker(db_path) as conn:
        copied = row(conn, 2)
        renumber_from(conn, 4, 1)
        conn.execute(
            f"INSERT INTO audit_log (seq, {', '.join(COLUMNS)}) VALUES (4, ?, ?, ?, ?, ?, ?, ?)", copied
        )
    result = await check(db_path)
    assert not result.ok
    assert result.first_bad == 4


async def test_forged_entry_appended_at_the_end(db_path: Path) -> None:
    with attacker(db_path) as conn:
        ts, *_ = row(conn, ENTRIES)
        conn.execute(
            "INSERT INTO audit_log (seq, ts, actor, action, object, outcome, details, hash)"
            " VALUES (?, ?, 'therapist:1', 'recording.consent', 'session:1', 'ok', '{}', ?)",
            (ENTRIES + 1, ts, "cd" * 32),
        )
    result = await check(db_path)
    assert not result.ok
    assert result.first_bad == ENTRIES + 1
    assert result.entries == ENTRIES


async def test_truncated_tail_needs_a_checkpoint(db_path: Path) -> None:
    db = await Database.open(db_path)
    try:
        checkpoint = await head(db)
    finally:
        await db.close()
    assert checkpoint is not None
    assert (await check(db_path, checkpoint)).ok

    with attacker(db_path) as conn:
        conn.execute("DELETE FROM audit_log WHERE seq > ?", (ENTRIES - 2,))

    # What is left is a valid chain: without a checkpoint nothing can tell.
    alone = await check(db_path)
    assert alone.ok
    assert alone.entries == ENTRIES - 2

    result = await check(db_path, checkpoint)
    assert not result.ok
    assert result.first_bad == ENTRIES - 1


async def test_truncated_tail_regrown_by_the_application(db_path: Path) -> None:
    db = await Database.open(db_path)
    try:
        checkpoint = await head(db)
    finally:
        await db.close()
    assert checkpoint is not None
    with attacker(db_path) as conn:
        conn.execute("DELETE FROM audit_log WHERE seq > ?", (ENTRIES - 2,))
    # The running server keeps appending with the real key, so the chain itself is valid again.
    db = await Database.open(db_path)
    try:
        log = AuditLog(KEY, StepClock())
        for n in range(2):
            await log.record(db, actor="system", action="server.start", details={"n": n})
    finally:
        await db.close()
    assert (await check(db_path)).ok

    result = await check(db_path, checkpoint)
    assert not result.ok
    assert result.first_bad == ENTRIES


async def test_checkpoint_with_a_wrong_hash(db_path: Path) -> None:
    result = await check(db_path, Checkpoint(3, "0" * 64))
    assert not result.ok
    assert result.first_bad == 3


async def test_checkpoint_in_the_middle_of_an_intact_log(db_path: Path) -> None:
    with closing(sqlite3.connect(db_path)) as conn:
        third_hash = row(conn, 3)[-1]
    assert (await check(db_path, Checkpoint(3, third_hash))).ok


def test_checkpoint_text_round_trips() -> None:
    point = Checkpoint(12, "a" * 64)
    assert Checkpoint.parse(str(point)) == point
    for bad in ("", "12", "x:" + "a" * 64, "12:" + "a" * 63, "12:" + "A" * 64):
        with pytest.raises(ValueError):
            Checkpoint.parse(bad)


@pytest.mark.parametrize("name", ["password", "token", "session_token", "TotpSecret", "cookie"])
async def test_secret_looking_details_are_refused(db_path: Path, name: str) -> None:
    db = await Database.open(db_path)
    try:
        with pytest.raises(ValueError, match=name):
            await AuditLog(KEY, StepClock()).record(
                db, actor="therapist:1", action="auth.login", details={name: "hunter2"}
            )
        assert (await head(db)).seq == ENTRIES  # nothing was written
    finally:
        await db.close()
    assert (await check(db_path)).ok


def test_key_file_is_private_and_stable(tmp_path: Path) -> None:
    path = tmp_path / "data" / "keys" / "audit-hmac.key"
    key = load_or_create_key(path)
    assert len(key) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert load_or_create_key(path) == key
    assert load_or_create_key(tmp_path / "other.key") != key


def test_damaged_key_file_is_refused_not_replaced(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "audit-hmac.key"
    load_or_create_key(path)
    path.write_bytes(b"short")
    with pytest.raises(RuntimeError, match="damaged"):
        load_or_create_key(path)
    assert path.read_bytes() == b"short"


async def test_key_is_not_stored_in_the_database(tmp_path: Path) -> None:
    settings = load_settings(environ={}, overrides={"data_dir": tmp_path / "data"})
    key = load_or_create_key(audit_key_path(settings))
    await write_entries(settings.db_path, key)
    assert audit_key_path(settings).parent != settings.db_path.parent
    for path in settings.data_dir.glob("vsession.sqlite3*"):
        content = path.read_bytes()
        assert key not in content
        assert key.hex().encode() not in content


# The admin's command line.


def cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_vsession("audit", *args, "--data-dir", data_dir)


@pytest.fixture
async def data_dir(tmp_path: Path) -> Path:
    settings = load_settings(environ={}, overrides={"data_dir": tmp_path / "data"})
    await write_entries(settings.db_path, load_or_create_key(audit_key_path(settings)))
    return settings.data_dir


async def test_cli_checkpoint_and_verify_intact(data_dir: Path) -> None:
    printed = cli(data_dir, "checkpoint")
    assert printed.returncode == 0, printed.stderr
    point = Checkpoint.parse(printed.stdout)
    assert point.seq == ENTRIES
    with closing(sqlite3.connect(data_dir / "vsession.sqlite3")) as conn:
        assert point.hash == row(conn, ENTRIES)[-1]

    result = cli(data_dir, "verify")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{ENTRIES} entries" in result.stdout

    assert cli(data_dir, "verify", "--checkpoint", str(point)).returncode == 0


async def test_cli_verify_names_the_first_bad_sequence(data_dir: Path) -> None:
    with attacker(data_dir / "vsession.sqlite3") as conn:
        put(conn, 3, ("therapist:9",), ("actor",))
    result = cli(data_dir, "verify")
    assert result.returncode == 1
    assert "sequence 3" in result.stdout


async def test_cli_verify_with_checkpoint_catches_truncation(data_dir: Path) -> None:
    point = cli(data_dir, "checkpoint").stdout.strip()
    with attacker(data_dir / "vsession.sqlite3") as conn:
        conn.execute("DELETE FROM audit_log WHERE seq > ?", (ENTRIES - 2,))
    assert cli(data_dir, "verify").returncode == 0
    result = cli(data_dir, "verify", "--checkpoint", point)
    assert result.returncode == 1
    assert f"sequence {ENTRIES - 1}" in result.stdout


def test_cli_refuses_a_malformed_checkpoint(tmp_path: Path) -> None:
    result = cli(tmp_path / "data", "verify", "--checkpoint", "not-a-checkpoint")
    assert result.returncode == 2
    assert "SEQ:HASH" in result.stderr


async def test_cli_verify_without_the_key_says_so_and_makes_no_new_one(data_dir: Path) -> None:
    key = data_dir / "keys" / "audit-hmac.key"
    key.unlink()
    result = cli(data_dir, "verify")
    assert result.returncode == 2
    assert "missing" in result.stderr
    assert not key.exists()
