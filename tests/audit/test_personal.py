"""Addresses in the audit log: sealed beside the chain, committed to by it, purgeable without
breaking it; entries written with the address inside them (before v6) reduced the same way.

The attacker has the SQLite file and the sqlite3 module, as in test_chain.py; in one test they
also have the personal-data key, but never the audit key."""

from __future__ import annotations

import os
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from tests.support.data_at_rest import ATTACKER_IP, checkpointed_bytes, write_legacy_entries
from vsession.audit import AuditLog, head, verify
from vsession.audit import personal as audit_personal
from vsession.audit.personal import Fields, seal
from vsession.auth.secretbox import SecretBox
from vsession.store import Database

KEY = bytes(range(32))
BOX = SecretBox(bytes(range(32, 64)))
OTHER_IP = "198.51.100.23"


class StepClock:
    def __init__(self) -> None:
        self.t = 1_800_000_000.0

    def now(self) -> float:
        self.t += 60
        return self.t


async def write(path: Path) -> None:
    """Two entries by addresses around one by a therapist."""
    db = await Database.open(path)
    try:
        log = AuditLog(KEY, StepClock(), BOX)
        await log.record(db, actor=f"ip:{ATTACKER_IP}", action="login.password", obj="ada", outcome="fail")
        await log.record(db, actor="therapist:1", action="session.create", obj="session:x")
        await log.record(db, actor=f"ip:{OTHER_IP}", action="link.redeem", obj="session:x", outcome="invalid")
    finally:
        await db.close()


async def check(path: Path, box: SecretBox | None = BOX):
    db = await Database.open(path)
    try:
        return await verify(db, KEY, personal_box=box)
    finally:
        await db.close()


async def purge_all(path: Path) -> int:
    db = await Database.open(path)
    try:
        async with db.transaction() as tx:
            purged = await audit_personal.purge(tx, before=4_000_000_000)
        await db.checkpoint()
    finally:
        await db.close()
    return purged


@pytest.fixture
async def db_path(tmp_path: Path) -> Path:
    path = tmp_path / "data" / "vsession.sqlite3"
    await write(path)
    return path


def rows(path: Path, sql: str) -> list[tuple]:
    with closing(sqlite3.connect(path)) as conn:
        return conn.execute(sql).fetchall()


async def test_an_address_is_sealed_beside_the_entry_not_in_it(db_path: Path) -> None:
    actors = rows(db_path, "SELECT actor, personal FROM audit_log ORDER BY seq")
    assert [a for a, _ in actors] == ["ip", "therapist:1", "ip"]
    assert actors[0][1].startswith("c:") and actors[2][1].startswith("c:") and actors[1][1] == ""
    assert [seq for (seq,) in rows(db_path, "SELECT seq FROM audit_personal ORDER BY seq")] == [1, 3]
    raw = checkpointed_bytes(db_path)
    assert ATTACKER_IP.encode() not in raw
    assert OTHER_IP.encode() not in raw
    assert (await check(db_path)).ok
    assert (await check(db_path, box=None)).ok


async def test_the_chain_verifies_after_the_addresses_are_purged(db_path: Path) -> None:
    db = await Database.open(db_path)
    try:
        point = await head(db)
    finally:
        await db.close()
    assert await purge_all(db_path) == 2
    assert rows(db_path, "SELECT count(*) FROM audit_personal") == [(0,)]
    for box in (BOX, None):
        result = await check(db_path, box)
        assert result.ok, result.reason
        assert result.head == point  # a checkpoint taken before the purge still matches


async def test_an_address_swapped_between_entries_does_not_open(db_path: Path) -> None:
    with closing(sqlite3.connect(db_path)) as conn:
        _, third = (r[0] for r in conn.execute("SELECT sealed FROM audit_personal ORDER BY seq"))
        conn.execute("DROP TRIGGER audit_personal_no_update")
        conn.execute("UPDATE audit_personal SET sealed = ? WHERE seq = 1", (third,))
        conn.commit()
    assert (await check(db_path, box=None)).ok  # the chain alone cannot see the side table
    result = await check(db_path)
    assert not result.ok
    assert result.first_bad == 1
    assert "do not open" in result.reason


async def test_an_address_rewritten_with_the_personal_key_breaks_the_commitment(db_path: Path) -> None:
    # Someone holding the personal-data key (not the audit key) blames another address.
    forged = seal(BOX, 1, Fields(os.urandom(32), {"actor": f"ip:{OTHER_IP}"}))
    with closing(sqlite3.connect(db_path)) as conn:
        conn.execute("DROP TRIGGER audit_personal_no_update")
        conn.execute("UPDATE audit_personal SET sealed = ? WHERE seq = 1", (forged,))
        conn.commit()
    result = await check(db_path)
    assert not result.ok
    assert result.first_bad == 1
    assert "not the ones it was written with" in result.reason


async def test_an_address_for_an_entry_that_has_none_is_refused(db_path: Path) -> None:
    with closing(sqlite3.connect(db_path)) as conn:
        conn.execute(
            "INSERT INTO audit_personal (seq, at, sealed) VALUES (2, 0, ?)",
            (seal(BOX, 2, Fields(os.urandom(32), {"actor": f"ip:{OTHER_IP}"})),),
        )
        conn.commit()
    result = await check(db_path)
    assert not result.ok
    assert result.first_bad == 2


async def test_dropping_the_commitment_breaks_the_chain(db_path: Path) -> None:
    with closing(sqlite3.connect(db_path)) as conn:
        conn.execute("DROP TRIGGER audit_log_no_update")
        conn.execute("UPDATE audit_log SET personal = '', actor = 'ip:203.0.113.99' WHERE seq = 1")
        conn.commit()
    result = await check(db_path, box=None)
    assert not result.ok
    assert result.first_bad == 1


async def test_a_log_without_the_personal_key_refuses_an_address(tmp_path: Path) -> None:
    db = await Database.open(tmp_path / "vsession.sqlite3")
    try:
        with pytest.raises(ValueError, match="never stored in clear"):
            await AuditLog(KEY, StepClock()).record(db, actor=f"ip:{ATTACKER_IP}", action="login.password")
        assert await head(db) is None
    finally:
        await db.close()


async def test_the_application_may_only_move_an_old_address_out(db_path: Path) -> None:
    with closing(sqlite3.connect(db_path)) as conn:
        for sql in (
            "UPDATE audit_log SET actor = 'ip', personal = 'r:00' WHERE seq = 2",  # not an address entry
            "UPDATE audit_log SET personal = 'r:00' WHERE seq = 1",  # already committed
            "UPDATE audit_personal SET at = 0 WHERE seq = 1",
        ):
            with pytest.raises(sqlite3.DatabaseError):
                conn.execute(sql)


# Entries written before v6, with the address inside the chained entry.


async def write_legacy(path: Path) -> None:
    """A log whose entries 1 and 3 were chained with the address inside them."""
    await (await Database.open(path)).close()
    with closing(sqlite3.connect(path)) as conn:
        write_legacy_entries(
            conn,
            KEY,
            [
                (f"ip:{ATTACKER_IP}", "login.password", "fail"),
                ("therapist:1", "session.create", "ok"),
                (f"ip:{OTHER_IP}", "link.redeem", "invalid"),
            ],
        )


async def reduce(path: Path) -> int:
    db = await Database.open(path)
    try:
        reduced = await audit_personal.reduce_legacy(db, KEY, BOX)
        await db.checkpoint()
    finally:
        await db.close()
    return reduced


async def test_old_entries_keep_verifying_once_their_addresses_move_out(tmp_path: Path) -> None:
    path = tmp_path / "vsession.sqlite3"
    await write_legacy(path)
    assert ATTACKER_IP.encode() in checkpointed_bytes(path)
    before = rows(path, "SELECT seq, hash FROM audit_log ORDER BY seq")

    assert await reduce(path) == 2
    assert await reduce(path) == 0  # once
    assert [a for (a,) in rows(path, "SELECT actor FROM audit_log ORDER BY seq")] == [
        "ip",
        "therapist:1",
        "ip",
    ]
    assert rows(path, "SELECT seq, hash FROM audit_log ORDER BY seq") == before  # checkpoints still match
    raw = checkpointed_bytes(path)
    assert ATTACKER_IP.encode() not in raw and OTHER_IP.encode() not in raw
    for box in (BOX, None):
        assert (await check(path, box)).ok

    assert await purge_all(path) == 2
    for box in (BOX, None):
        assert (await check(path, box)).ok


async def test_an_old_entry_edited_before_the_move_is_not_vouched_for(tmp_path: Path) -> None:
    path = tmp_path / "vsession.sqlite3"
    await write_legacy(path)
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("DROP TRIGGER audit_log_no_update")
        conn.execute("UPDATE audit_log SET outcome = 'ok' WHERE seq = 1")
        conn.commit()
    assert await reduce(path) == 1  # only entry 3
    result = await check(path, box=None)
    assert not result.ok
    assert result.first_bad == 1


@pytest.mark.parametrize(
    ("column", "value"), [("outcome", "ok"), ("personal", "r:" + "0" * 64), ("actor", "therapist:1")]
)
async def test_a_moved_out_entry_edited_afterwards_fails(tmp_path: Path, column: str, value: str) -> None:
    path = tmp_path / "vsession.sqlite3"
    await write_legacy(path)
    await reduce(path)
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("DROP TRIGGER audit_log_no_update")
        conn.execute(f"UPDATE audit_log SET {column} = ? WHERE seq = 3", (value,))
        conn.commit()
    result = await check(path, box=None)
    assert not result.ok
    assert result.first_bad == 3


async def test_a_moved_out_address_swapped_for_another_is_caught_with_the_key(tmp_path: Path) -> None:
    path = tmp_path / "vsession.sqlite3"
    await write_legacy(path)
    await reduce(path)
    forged = seal(BOX, 1, Fields(b"", {"actor": f"ip:{OTHER_IP}"}))
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("DROP TRIGGER audit_personal_no_update")
        conn.execute("UPDATE audit_personal SET sealed = ? WHERE seq = 1", (forged,))
        conn.commit()
    assert (await check(path, box=None)).ok
    result = await check(path)
    assert not result.ok
    assert result.first_bad == 1
