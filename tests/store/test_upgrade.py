"""A database written by a version before v5 (titles, names, CSRF tokens and addresses in clear) is
sealed and reduced at the first start, so the same copied folder no longer shows them; the key folder
can live elsewhere; and a lost personal-data key stops the server instead of being replaced."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from tests.support.clock import FakeClock
from tests.support.data_at_rest import ATTACKER_IP, copy_data, raw_bytes, write_legacy_entries
from vsession.audit import verify
from vsession.config import Settings, load_settings
from vsession.keyfile import load_or_create_key
from vsession.rooms import personal
from vsession.services import audit_key_path, open_services, personal_key_path
from vsession.store import therapy_sessions
from vsession.store.db import _statements
from vsession.store.migrations import MIGRATIONS

TITLE = "Intake: Ottoline Vandersteen"
NAME = "Bartholomew Quigley-Asante"
CSRF = "legacy-csrf-Qz8wNc3VfTb1LmR0yXpA4sKdE7hJ2gUo9iWvYtB5n6"


def write_v4_database(settings: Settings) -> None:
    """The database as v4 left it: an open session with its title, an admitted client's name, a
    signed-in therapist's CSRF token, and audit entries with an address inside them."""
    settings.data_dir.mkdir(parents=True)
    with closing(sqlite3.connect(settings.db_path, isolation_level=None)) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        for script in MIGRATIONS[:4]:
            for statement in _statements(script):
                conn.execute(statement)
        conn.execute("PRAGMA user_version = 4")
        conn.execute(
            "INSERT INTO therapists (id, username, display_name, password_hash, totp_secret, created_at)"
            " VALUES (1, 'ada', 'Dr. Ada', '-', x'00', 0)"
        )
        conn.execute(
            "INSERT INTO therapy_sessions (id, therapist_id, title, starts_at, duration_minutes, state,"
            " created_at) VALUES ('s1', 1, ?, 1800000000, 50, 'open', 1800000000)",
            (TITLE,),
        )
        conn.execute(
            "INSERT INTO seats (session_id, seat, link_issued_at, display_name, state)"
            " VALUES ('s1', 1, 1800000000, ?, 'admitted')",
            (NAME,),
        )
        conn.execute(
            "INSERT INTO web_sessions (token_hash, therapist_id, stage, csrf_token, created_at, last_seen)"
            " VALUES ('h', 1, 'full', ?, 1800000000, 1800000000)",
            (CSRF,),
        )
        key = load_or_create_key(audit_key_path(settings))
        conn.execute("BEGIN")
        write_legacy_entries(
            conn,
            key,
            [
                (f"ip:{ATTACKER_IP}", "login.password", "fail"),
                ("therapist:1", "session.create", "ok"),
                (f"ip:{ATTACKER_IP}", "link.redeem", "ok"),
            ],
        )


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    settings = load_settings(environ={}, overrides={"data_dir": tmp_path / "data"})
    write_v4_database(settings)
    return settings


def in_clear(folder: Path) -> list[str]:
    raw = raw_bytes(folder)
    return [text for text in (TITLE, NAME, CSRF, ATTACKER_IP) if text.encode() in raw]


async def test_the_first_start_seals_and_reduces_what_v4_wrote_in_clear(
    settings: Settings, tmp_path: Path
) -> None:
    assert in_clear(copy_data(settings.data_dir, tmp_path / "before", keys=False)) == [
        TITLE,
        NAME,
        CSRF,
        ATTACKER_IP,
    ]

    services = await open_services(settings, FakeClock())
    try:
        async with services.db.transaction() as tx:
            session = await therapy_sessions.get(tx, "s1")
            seat = await therapy_sessions.seat(tx, "s1", 1)
            assert session is not None and seat is not None
        assert personal.title_of(services.personal, session) == TITLE
        assert personal.name_of(services.personal, seat) == NAME
        for box in (services.personal, None):
            result = await verify(services.db, services.audit_key, personal_box=box)
            assert result.ok, result.reason
            assert result.entries == 3
        await services.db.checkpoint()  # what the first housekeeping pass does
        copy = copy_data(settings.data_dir, tmp_path / "after", keys=False)
    finally:
        await services.close()
    assert in_clear(copy) == []
    assert in_clear(settings.data_dir) == []  # and once the server has stopped


async def test_a_lost_personal_key_stops_the_start_and_is_not_replaced(settings: Settings) -> None:
    await (await open_services(settings, FakeClock())).close()
    key = personal_key_path(settings)
    key.unlink()
    with pytest.raises(RuntimeError, match="missing"):
        await open_services(settings, FakeClock())
    assert not key.exists()


async def test_the_keys_can_live_outside_the_data_folder(tmp_path: Path) -> None:
    settings = load_settings(
        environ={"VSESSION_KEY_DIR": str(tmp_path / "elsewhere")}, overrides={"data_dir": tmp_path / "data"}
    )
    services = await open_services(settings, FakeClock())
    await services.close()
    assert not (settings.data_dir / "keys").exists()
    assert sorted(p.name for p in (tmp_path / "elsewhere").iterdir()) == [
        "audit-hmac.key",
        "personal-data.key",
        "totp-secrets.key",
    ]
