"""`vsession backup` refuses without a recording recipient, over an existing file, and without a
database or key folder, changing nothing; a key folder kept outside the data folder goes into the
backup and comes back wherever the restoring settings put it."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

from tests.support.paths import REPO
from tests.support.practice_key import make_key
from vsession.backup.snapshot import MEMORY

Cli = Callable[..., subprocess.CompletedProcess[str]]


def state(folder: Path) -> dict[str, tuple[int, str]]:
    """Every file under the folder: its mode and the SHA-256 of its bytes."""
    return {
        str(p.relative_to(folder)): (p.stat().st_mode, hashlib.sha256(p.read_bytes()).hexdigest())
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def refused(result: subprocess.CompletedProcess[str], code: int, *phrases: str) -> None:
    assert result.returncode == code, result
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1 and "Traceback" not in result.stderr, result.stderr
    for phrase in phrases:
        assert phrase in result.stderr, result.stderr


def actions(db: Path) -> list[str]:
    with closing(sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True)) as conn:
        return [row[0] for row in conn.execute("SELECT action FROM audit_log ORDER BY seq")]


def test_without_a_recipient_nothing_is_written(practice: Any, tmp_path: Path, cli: Cli) -> None:
    data_dir = practice.data_dir
    before = state(data_dir)
    out = tmp_path / "backup.age"
    refused(cli("backup", "--data-dir", data_dir, "-o", out), 2, "no recording_recipient is set")
    assert not out.exists()
    assert state(data_dir) == before


def test_an_existing_file_is_never_overwritten(practice: Any, tmp_path: Path, cli: Cli) -> None:
    data_dir, env = practice.data_dir, practice.env
    out = tmp_path / "backup.age"
    out.write_bytes(b"last week's backup")
    before = state(data_dir)
    refused(cli("backup", "--data-dir", data_dir, "-o", out, env=env), 2, "exists; not overwriting")
    assert out.read_bytes() == b"last week's backup"
    assert state(data_dir) == before  # no audit entry either


def test_no_database_or_no_key_folder_is_refused(practice: Any, tmp_path: Path, cli: Cli) -> None:
    data_dir, env = practice.data_dir, practice.env
    out = tmp_path / "backup.age"
    mistyped = tmp_path / "dat"
    refused(cli("backup", "--data-dir", mistyped, "-o", out, env=env), 2, "no database at")
    assert not out.exists() and not mistyped.exists()

    (data_dir / "keys").rename(tmp_path / "keys-elsewhere")
    before = state(data_dir)
    refused(cli("backup", "--data-dir", data_dir, "-o", out, env=env), 2, "no key folder at")
    assert not out.exists()
    assert state(data_dir) == before


def test_a_key_folder_outside_the_data_folder_round_trips(tmp_path: Path, cli: Cli) -> None:
    identity, recipient = make_key(tmp_path)
    data_dir, keys = tmp_path / "data", tmp_path / "etc-keys"
    old = {"VSESSION_KEY_DIR": str(keys)}
    assert cli("setup-link", "--data-dir", data_dir, env=old).returncode == 0
    assert not (data_dir / "keys").exists() and (keys / "audit-hmac.key").is_file()
    out = tmp_path / "backup.age"
    made = cli(
        "backup", "--data-dir", data_dir, "-o", out, env=old | {"VSESSION_RECORDING_RECIPIENT": recipient}
    )
    assert made.returncode == 0, made
    assert f"from {keys}" in made.stdout
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert actions(data_dir / "vsession.sqlite3") == ["setup_link.create", "backup.created"]

    new_dir, new_keys = tmp_path / "new", tmp_path / "srv" / "new-keys"
    new = {"VSESSION_KEY_DIR": str(new_keys)}
    restored = cli("restore", out, "-i", identity, "--data-dir", new_dir, env=new)
    assert restored.returncode == 0, restored
    assert not (new_dir / "keys").exists()
    assert stat.S_IMODE(new_keys.stat().st_mode) == 0o700
    for path in keys.iterdir():
        copy = new_keys / path.name
        assert copy.read_bytes() == path.read_bytes() and stat.S_IMODE(copy.stat().st_mode) == 0o600
    verified = cli("audit", "verify", "--data-dir", new_dir, env=new)
    assert verified.returncode == 0 and verified.stdout.startswith("audit log intact: 1 entries"), verified
    # Without the key folder the restored log cannot be checked: the keys did go elsewhere.
    assert cli("audit", "verify", "--data-dir", new_dir).returncode == 2


# Runs `vsession backup` with a Python audit hook that notes every file opened for writing and every
# SQLite database connected to, so a temporary file made and removed again would still show.
_WATCHED = """
import json, os, sys
seen = []
WRITE = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
def hook(event, args):
    if event == "open" and not isinstance(args[0], int):
        mode, flags = args[1], args[2]
        if (mode and set(mode) & set("wax+")) or (mode is None and flags & WRITE):
            seen.append(["write", os.fspath(args[0])])
    elif event == "sqlite3.connect":
        seen.append(["sqlite", os.fspath(args[0])])
    elif event in ("tempfile.mkstemp", "tempfile.mkdtemp"):
        seen.append(["temp", os.fspath(args[0])])
sys.addaudithook(hook)
from vsession.cli import main
code = main(sys.argv[1:])
print(json.dumps(seen), file=sys.stderr)
sys.exit(code)
"""


def test_nothing_but_the_encrypted_file_is_written(practice: Any, tmp_path: Path) -> None:
    out = tmp_path / "backup.age"
    env = {k: v for k, v in os.environ.items() if not k.startswith("VSESSION_")} | practice.env
    done = subprocess.run(
        [sys.executable, "-c", _WATCHED, "backup", "--data-dir", str(practice.data_dir), "-o", str(out)],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=120,
    )
    assert done.returncode == 0, done
    seen = json.loads(done.stderr.splitlines()[-1])
    db = practice.data_dir / "vsession.sqlite3"
    assert [path for kind, path in seen if kind == "write" and path != os.devnull] == [str(out)]
    assert [kind for kind, _ in seen if kind not in ("write", "sqlite")] == []
    # The live database (read for the image, then written once for the audit entry), and memory
    # (an in-memory database that a file name of its own could not turn into a file on disk).
    connected = {path for kind, path in seen if kind == "sqlite"}
    assert connected == {MEMORY, ":memory:", db.resolve().as_uri() + "?mode=rw", str(db)}, connected
    # Ciphertext only: neither the database's nor any key's bytes are in the file.
    written = out.read_bytes()
    assert written.startswith(b"age-encryption.org/v1\n") and b"SQLite format 3" not in written
    for key in (practice.data_dir / "keys").iterdir():
        assert key.read_bytes() not in written
