"""The recordings manifest: a recording made in a real call is listed in the backup (not copied:
it is age ciphertext already), and restore names each recording file the new data folder lacks,
noting those that were already missing when the backup was made."""

from __future__ import annotations

import asyncio
import io
import json
import subprocess
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.support.consent_calls import (
    record_once,
    recordings,
    sha256_of,
)
from vsession.recording import age

Cli = Callable[..., subprocess.CompletedProcess[str]]


def decrypted(backup: Path, identity: Path) -> bytes:
    plain = io.BytesIO()
    assert age.decrypt(backup, age.read_identities(identity), plain).status is age.Status.COMPLETE
    return plain.getvalue()


def manifest(backup: Path, identity: Path) -> list[dict[str, Any]]:
    with tarfile.open(fileobj=io.BytesIO(decrypted(backup, identity))) as tar:
        member = tar.extractfile("recordings.json")
        assert member is not None
        return json.loads(member.read())["recordings"]


async def test_recordings_are_listed_not_copied_and_restore_says_what_to_copy(
    inprocess_call: Any, tmp_path: Path, cli: Cli
) -> None:
    rec = await record_once(inprocess_call, tmp_path)
    settings = rec.services.settings
    [row] = await recordings(rec.services)
    path = settings.data_dir / "recordings" / row["file_name"]
    env = {"VSESSION_RECORDING_RECIPIENT": settings.recording_recipient}

    backup = tmp_path / "with-file.age"
    made = await asyncio.to_thread(cli, "backup", "--data-dir", settings.data_dir, "-o", backup, env=env)
    assert made.returncode == 0, made
    assert "recordings: 1 listed, 1 files present" in made.stdout
    assert manifest(backup, rec.identity) == [
        {
            "id": row["id"],
            "session": row["session_id"],
            "segment": 1,
            "state": "complete",
            "bytes": path.stat().st_size,
            "ciphertext_sha256": sha256_of(path),
            "file_name": row["file_name"],
            "present": True,
        }
    ]
    # The recording itself is not in it.
    assert path.read_bytes()[-4096:] not in decrypted(backup, rec.identity)

    new_dir = tmp_path / "new"
    restored = await asyncio.to_thread(cli, "restore", backup, "-i", rec.identity, "--data-dir", new_dir)
    assert restored.returncode == 0, restored
    assert f"recordings: 1 listed, 1 files not in {new_dir}/recordings/" in restored.stdout
    [line] = [x for x in restored.stdout.splitlines() if row["id"] in x]
    assert row["file_name"] in line and sha256_of(path) in line and "already missing" not in line
    assert "rsync -a OLD/recordings/" in restored.stdout

    # Copied as the restore says, the file is the recording the restored database lists.
    (new_dir / "recordings" / row["file_name"]).write_bytes(path.read_bytes())
    listed = await asyncio.to_thread(cli, "recordings", "list", "--data-dir", new_dir)
    assert listed.returncode == 0, listed
    [entry] = [x.split() for x in listed.stdout.splitlines() if x.startswith(row["id"])]
    assert entry[-1] == sha256_of(new_dir / "recordings" / row["file_name"])

    # A file already gone from the server is listed as such.
    path.rename(tmp_path / "moved-away.age")
    backup = tmp_path / "without-file.age"
    made = await asyncio.to_thread(cli, "backup", "--data-dir", settings.data_dir, "-o", backup, env=env)
    assert made.returncode == 0, made
    assert "recordings: 1 listed, 0 files present" in made.stdout
    assert [r["present"] for r in manifest(backup, rec.identity)] == [False]
    again = tmp_path / "again"
    restored = await asyncio.to_thread(cli, "restore", backup, "-i", rec.identity, "--data-dir", again)
    assert restored.returncode == 0, restored
    [line] = [x for x in restored.stdout.splitlines() if row["id"] in x]
    assert "already missing when the backup was made" in line
