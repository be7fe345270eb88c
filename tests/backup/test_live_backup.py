"""A backup taken while a real server signs people in and schedules sessions restores into a fresh
data folder on which a new server runs: the old account signs in with its password and TOTP secret,
the sealed session titles read, and `vsession audit verify` passes. The file is real age."""

from __future__ import annotations

import hashlib
import io
import json
import sqlite3
import stat
import subprocess
import tarfile
import threading
import time
import urllib.error
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

from tests.support.actors import PASSWORD, Agent, Therapist, enrol_therapist
from tests.support.live_server import LiveServer
from tests.support.practice_key import make_key

Cli = Callable[..., subprocess.CompletedProcess[str]]


class Writer(threading.Thread):
    """Writes through the server's front door in a loop: a password sign-in (a sign-in row and an
    audit entry), a new session (its row, seats and audit entry in one transaction), and now and
    then a failed sign-in (an audit entry whose address is sealed in audit_personal)."""

    def __init__(self, origin: str, therapist: Therapist) -> None:
        super().__init__(daemon=True)
        self.origin = origin
        self.therapist = therapist
        self.rounds = 0
        self.titles: list[str] = []
        self.errors: list[BaseException] = []
        self.halt = threading.Event()

    def run(self) -> None:
        try:
            while not self.halt.is_set():
                Agent(self.origin).post("/api/login", {"username": "ada", "password": PASSWORD})
                title = f"Session {self.rounds}"
                self.therapist.agent.post(
                    "/api/sessions",
                    {"title": title, "starts_at": int(time.time()), "duration_minutes": 60, "seats": 1},
                )
                self.titles.append(title)
                if self.rounds % 3 == 0 and self.rounds < 30:  # under the per-address failure limit
                    try:
                        Agent(self.origin).post("/api/login", {"username": "nobody", "password": "wrong"})
                    except urllib.error.HTTPError as exc:
                        assert exc.code == 401
                self.rounds += 1
        except BaseException as exc:
            self.errors.append(exc)

    def wait_rounds(self, count: int) -> None:
        while self.rounds < count and self.is_alive():
            time.sleep(0.05)


def audit_rows(db: Path) -> list[tuple[int, str, str]]:
    with closing(sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True)) as conn:
        return conn.execute("SELECT seq, action, hash FROM audit_log ORDER BY seq").fetchall()


def scalar(db: Path, sql: str) -> int:
    with closing(sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True)) as conn:
        return int(conn.execute(sql).fetchone()[0])


def scalar_text(db: Path, sql: str) -> str:
    with closing(sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True)) as conn:
        return str(conn.execute(sql).fetchone()[0])


def sign_in(origin: str, therapist: Therapist) -> Agent:
    agent = Agent(origin)
    assert agent.post("/api/login", {"username": therapist.username, "password": PASSWORD}) == {
        "next": "totp"
    }
    # The enrolment used the previous step's code; this step's is fresh in the restored database too.
    agent.post("/api/login/code", {"code": therapist.totp.now(), "kind": "totp"})
    agent.csrf = agent.get("/api/me")["csrf"]
    return agent


def test_a_backup_taken_during_writes_restores_to_a_working_server(
    tmp_path: Path, servers: Callable[..., LiveServer], cli: Cli
) -> None:
    identity, recipient = make_key(tmp_path)
    breakglass_dir = tmp_path / "breakglass"
    breakglass_dir.mkdir()
    breakglass_identity, breakglass = make_key(breakglass_dir)
    env = {"VSESSION_RECORDING_RECIPIENT": recipient, "VSESSION_BREAKGLASS_RECIPIENT": breakglass}
    old_dir, new_dir = tmp_path / "old", tmp_path / "new"
    old = servers(old_dir, environment=env)
    therapist = enrol_therapist(old.url, old.setup_link())

    writer = Writer(old.url, therapist)
    writer.start()
    writer.wait_rounds(2)
    started_at = writer.rounds
    backup = tmp_path / "practice.backup.age"
    made = cli("backup", "--data-dir", old_dir, "-o", backup, env=env)
    finished_at = writer.rounds
    writer.halt.set()
    writer.join(timeout=60)
    assert writer.errors == []
    assert made.returncode == 0, made
    assert finished_at > started_at, "the server must have been writing while the backup ran"
    assert "copy" in made.stdout and "NOT in the backup" in made.stdout

    # The backup is recorded in the live chain, after the snapshot: the copy does not hold it.
    live = audit_rows(old.data_dir / "vsession.sqlite3")
    [entry] = [row for row in live if row[1] == "backup.created"]
    details = json.loads(
        scalar_text(
            old.data_dir / "vsession.sqlite3", f"SELECT details FROM audit_log WHERE seq = {entry[0]}"
        )
    )
    assert details["sha256"] == hashlib.sha256(backup.read_bytes()).hexdigest()
    assert details["bytes"] == backup.stat().st_size and details["recipients"] == 2
    # Written by another process into the running server's chain, which stays intact.
    intact = cli("audit", "verify", "--data-dir", old_dir)
    assert intact.returncode == 0 and intact.stdout.startswith("audit log intact"), intact
    restored = cli("restore", backup, "-i", identity, "--data-dir", new_dir)
    assert restored.returncode == 0, restored
    new_db = new_dir / "vsession.sqlite3"
    image = new_db.read_bytes()
    copy = audit_rows(new_db)
    assert copy == live[: len(copy)], "the restored audit log is a prefix of the live one"
    assert entry[0] > len(copy) and all(row[1] != "backup.created" for row in copy)
    # One consistent moment: every session row came with its audit entry, in one transaction.
    sessions = scalar(new_db, "SELECT count(*) FROM therapy_sessions")
    assert sessions >= 2
    assert sessions == scalar(new_db, "SELECT count(*) FROM audit_log WHERE action = 'session.create'")

    for folder in (new_dir, new_dir / "keys"):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    for path in [new_db, *(new_dir / "keys").iterdir()]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in (new_dir / "keys").iterdir()) == sorted(
        p.name for p in (old_dir / "keys").iterdir()
    )

    # A new server on the restored folder: the old account, its TOTP secret and its sessions.
    new = servers(new_dir)
    agent = sign_in(new.url, therapist)
    titles = [s["title"] for s in agent.get("/api/sessions")["sessions"]]
    assert len(titles) == sessions and set(titles) <= set(writer.titles)
    assert new.stop() == 0
    verified = cli("audit", "verify", "--data-dir", new_dir)
    assert verified.returncode == 0, verified
    assert verified.stdout.startswith("audit log intact")
    assert audit_rows(new_db)[: len(copy)] == copy

    # Stock age opens it, with either key: a tar of the database image, the keys and the manifest.
    for key in (identity, breakglass_identity):
        plain = subprocess.run(["age", "-d", "-i", str(key), str(backup)], capture_output=True, check=True)
        with tarfile.open(fileobj=io.BytesIO(plain.stdout)) as tar:
            names = tar.getnames()
            assert names[:2] == ["backup.json", "vsession.sqlite3"] and names[-1] == "recordings.json"
            database = tar.extractfile("vsession.sqlite3")
            assert database is not None and database.read() == image
            for path in (old_dir / "keys").iterdir():
                member = tar.extractfile(f"keys/{path.name}")
                assert member is not None and member.read() == path.read_bytes()
