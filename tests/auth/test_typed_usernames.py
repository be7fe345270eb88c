"""A password typed into the username box is never stored: an unknown username reaches the failure
counter and the audit log only as a keyed hash (the key lives in the key folder, outside the DB),
and counting and lockout work on that hash as they did on the name."""

from __future__ import annotations

import hashlib
import hmac
import sqlite3
import unicodedata
from contextlib import closing
from pathlib import Path

from tests.support.app_client import Server, Therapist
from vsession.auth import login, throttle
from vsession.store import Database
from vsession.store.db import _statements
from vsession.store.migrations import MIGRATIONS

# What someone types into the username box when they are one field off.
TYPED = "Violet-Kettle Harbour 42!"


def stored_bytes(data_dir: Path) -> dict[str, bytes]:
    """Every file of the data folder but the keys: the SQLite file, its WAL and shared memory."""
    return {
        str(p.relative_to(data_dir)): p.read_bytes()
        for p in sorted(data_dir.rglob("*"))
        if p.is_file() and "keys" not in p.relative_to(data_dir).parts
    }


def forms(text: str) -> list[bytes]:
    """The typed text and the forms the server might keep of it (normalised, case-folded),
    in the encodings SQLite might use."""
    folded = unicodedata.normalize("NFKC", text).strip().casefold()
    return [f.encode(enc) for f in {text, folded, folded.upper()} for enc in ("utf-8", "utf-16-le")]


async def test_an_unknown_username_is_stored_only_as_a_keyed_hash(
    server: Server, enrolled_therapist: Therapist
) -> None:
    threshold = server.settings.lockout_threshold
    for failures in range(threshold):
        server.clock.advance(throttle.delay_after(failures))
        reply = await server.browser().password(TYPED, "whatever the password was")
        assert (reply.status, reply.body) == (401, {"error": login.BAD_CREDENTIALS}), failures

    # Lockout still applies to that name, however it is typed again.
    locked = await server.browser().password(TYPED.upper(), "anything")
    assert (locked.status, locked.body) == (429, {"error": throttle.LOCKED})
    # And the therapist's own account is untouched by it.
    await server.browser().login(enrolled_therapist.secret)

    files = stored_bytes(server.settings.data_dir)
    assert any(name.endswith(".db-wal") or name.endswith("-wal") for name in files), files.keys()
    for name, data in files.items():
        for form in forms(TYPED):
            assert form not in data, (name, form)
    # What is stored instead is the same keyed hash everywhere, so an admin can still follow it.
    hidden = await throttle.hidden_name(server.ctx, TYPED.casefold())
    assert hidden.startswith("hmac:")
    objects = {obj for _, obj, _ in await server.audit("login.password")} | {
        obj for _, obj, _ in await server.audit("login.lockout")
    }
    assert hidden in objects
    assert (server.settings.key_folder / throttle.USERNAME_KEY_FILE).stat().st_mode & 0o077 == 0


async def test_the_hash_is_keyed_by_the_file_outside_the_db(server: Server) -> None:
    """A copy of the DB alone cannot test guesses against the stored hashes."""
    hidden = await throttle.hidden_name(server.ctx, "nobody")
    key = (server.settings.key_folder / throttle.USERNAME_KEY_FILE).read_bytes()
    assert len(key) == 32
    assert hidden == "hmac:" + hmac.new(key, b"nobody", hashlib.sha256).hexdigest()[:32]
    assert hidden.removeprefix("hmac:") not in hashlib.sha256(b"nobody").hexdigest()


async def test_counters_kept_by_an_older_version_are_dropped_on_upgrade(tmp_path: Path) -> None:
    """Before v8 the counter table held the typed text itself; upgrading drops those rows."""
    path = tmp_path / "vsession.sqlite3"
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        for script in MIGRATIONS[:7]:
            for statement in _statements(script):
                conn.execute(statement)
        conn.execute("PRAGMA user_version = 7")
        conn.execute(
            "INSERT INTO login_failures (username, count, last_failure) VALUES (?, 3, 0)", (TYPED.casefold(),)
        )
    db = await Database.open(path)
    try:
        assert await db.fetchall("SELECT * FROM login_failures") == []
    finally:
        await db.close()
