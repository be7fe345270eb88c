"""`vsession backup` and `vsession restore`.

Exit codes: 0 done; 2 bad usage or settings (no recipient, output exists, target not empty,
unreadable identity), nothing changed; 1 the backup could not be made or restored, nothing changed
(or, for `backup`, the file is complete but its audit entry could not be written).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import io
import os
import sqlite3
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, cast

from vsession.audit import AuditLog
from vsession.backup import archive, restore
from vsession.backup.restore import RestoreError
from vsession.backup.snapshot import Snapshot, SnapshotError, take
from vsession.clock import SystemClock
from vsession.config import Settings
from vsession.keyfile import read_key
from vsession.recording import age
from vsession.recording.recipients import describe, parse_recipient
from vsession.recording.service import recipients, recordings_dir
from vsession.services import audit_key_path
from vsession.store import Database
from vsession.store.migrations import MIGRATIONS


def add_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    """Adds the subcommands to `vsession`'s parser; `common` carries --config/--data-dir/--host/--port."""
    backup = commands.add_parser(
        "backup",
        parents=[common],
        help="write an encrypted backup of the database and key folder (not the recordings)",
    )
    backup.add_argument("-o", "--output", required=True, type=Path, help="backup file to create")
    backup.add_argument(
        "--recording-recipient",
        metavar="AGE1...",
        help="as for `serve`: the backup is encrypted to it (VSESSION_RECORDING_RECIPIENT)",
    )
    backup.set_defaults(run=cmd_backup)
    back = commands.add_parser(
        "restore", parents=[common], help="restore a backup into a new, empty data folder"
    )
    back.add_argument("file", type=Path, help="a file made by `vsession backup`")
    back.add_argument("-i", "--identity", required=True, type=Path, help="the practice's identity file")
    back.set_defaults(run=cmd_restore)


def _fail(message: str, code: int) -> int:
    print(f"vsession: {message}", file=sys.stderr)
    return code


class _Digest:
    """Passes the ciphertext to the file and hashes it on the way, for the audit entry."""

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw
        self.sha256 = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes | memoryview) -> int:
        count = self._raw.write(data)
        self.sha256.update(memoryview(data)[:count])
        self.size += count
        return count

    def flush(self) -> None:
        self._raw.flush()

    def fileno(self) -> int:
        return self._raw.fileno()


def _write_backup(settings: Settings, output: Path) -> tuple[Snapshot, _Digest]:
    """Raises FileExistsError before anything else if `output` exists; removes a partial file."""
    # 0600 like every other file of the practice's: ciphertext, but its size and times are no one's business.
    fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        try:
            snapshot = take(settings)
            sink = _Digest(out)
            # Plaintext exists only in this process's memory: the tar stream goes straight into
            # the encrypting writer.
            with age.EncryptingWriter(cast(Any, sink), recipients(settings)) as writer:
                archive.write(cast(Any, writer), snapshot, datetime.now(UTC))
        except BaseException:
            output.unlink(missing_ok=True)  # a partial backup would only mislead
            raise
    return snapshot, sink


async def cmd_backup(args: argparse.Namespace, settings: Settings) -> int:
    keys = recipients(settings)
    if not keys:
        return _fail(
            "no recording_recipient is set: a backup is encrypted to the practice's recording key, "
            "so set recording_recipient first (see `vsession keys generate`)",
            2,
        )
    output: Path = args.output
    try:
        snapshot, sink = await asyncio.to_thread(_write_backup, settings, output)
    except FileExistsError:
        return _fail(f"{output} exists; not overwriting it", 2)
    except SnapshotError as exc:
        return _fail(str(exc), 2)
    except (OSError, sqlite3.Error) as exc:
        return _fail(f"backup failed, no file written: {exc}", 1)
    present = sum(1 for row in snapshot.recordings if row["present"])
    details = {
        "sha256": sink.sha256.hexdigest(),
        "bytes": sink.size,
        "database_bytes": len(snapshot.database),
        "schema": snapshot.schema,
        "recordings": len(snapshot.recordings),
        "recordings_present": present,
        "recipients": len(keys),
    }
    # Recorded before anything is printed: a closed stdout (a cron job's, say) must not lose it.
    problem = await _record(settings, snapshot, output.name, details)
    print(f"backup written to {output} ({sink.size} bytes, sha256 {details['sha256']})")
    print(f"  database: {len(snapshot.database)} bytes, schema v{snapshot.schema}")
    print(f"  key folder: {len(snapshot.keys)} files from {settings.key_folder}")
    print(
        f"  recordings: {len(snapshot.recordings)} listed, {present} files present; the files are NOT in "
        f"the backup (they are age-encrypted already): copy {recordings_dir(settings)}/ separately"
    )
    print("  encrypted to " + ", ".join(describe(parse_recipient(key)) for key in keys))
    if problem:
        return _fail(f"the backup is complete, but its audit entry was not written: {problem}", 1)
    return 0


async def _record(settings: Settings, snapshot: Snapshot, name: str, details: dict[str, Any]) -> str:
    """Append "backup.created" to the live audit chain; "" when done, else why not."""
    if snapshot.schema != len(MIGRATIONS):
        # Opening the database would migrate it under a server of another version.
        return f"the database is schema v{snapshot.schema} and this vsession v{len(MIGRATIONS)}"
    try:
        key = read_key(audit_key_path(settings))
        db = await Database.open(settings.db_path)
    except (RuntimeError, OSError, sqlite3.Error) as exc:
        return str(exc)
    try:
        await AuditLog(key, SystemClock()).record(
            db, actor="admin:cli", action="backup.created", obj=name, details=details
        )
    except sqlite3.Error as exc:
        return str(exc)
    finally:
        await db.close()
    return ""


def _open_backup(path: Path, identities: list[Any]) -> bytes:
    """The decrypted archive. age.decrypt judges the whole file before it hands out a byte."""
    plain = io.BytesIO()
    result = age.decrypt(path, identities, plain)
    if result.status is not age.Status.COMPLETE:
        raise age.AgeError(f"the file is {result.status}: {result.detail}")
    return plain.getvalue()


async def cmd_restore(args: argparse.Namespace, settings: Settings) -> int:
    try:
        restore.check_target(settings)
    except RestoreError as exc:
        return _fail(str(exc), 2)
    try:
        identities = age.read_identities(args.identity)
    except (OSError, ValueError) as exc:
        return _fail(f"cannot read identity file {args.identity}: {exc}", 2)
    try:
        data = await asyncio.to_thread(_open_backup, args.file, identities)
    except age.NoIdentityMatches:
        return _fail(
            f"{args.identity} does not open {args.file}: it was encrypted to other keys; nothing restored", 1
        )
    except age.AgeError as exc:
        return _fail(f"{args.file} cannot be restored: {exc}; nothing restored", 1)
    except OSError as exc:
        return _fail(f"cannot read {args.file}: {exc.strerror or exc}", 2)
    try:
        contents = await asyncio.to_thread(archive.read, data)
        await asyncio.to_thread(restore.write, contents, settings)
    except archive.ArchiveError as exc:
        return _fail(f"{args.file} cannot be restored: {exc}; nothing restored", 1)
    except RestoreError as exc:
        return _fail(str(exc), 1)
    _report(contents, settings)
    return 0


def _report(contents: archive.Contents, settings: Settings) -> None:
    info = contents.info
    print(
        f"restored the backup of {info.get('created')} (vsession {info.get('vsession')}, "
        f"schema v{info['schema']}) into {settings.data_dir}"
    )
    print(f"  database: {settings.db_path} ({len(contents.database)} bytes)")
    print(f"  key folder: {settings.key_folder} ({len(contents.keys)} files, 0600, folder 0700)")
    missing = restore.missing_recordings(contents, settings)
    folder = recordings_dir(settings)
    print(f"  recordings: {len(contents.recordings)} listed, {len(missing)} files not in {folder}/")
    for row in missing:
        note = "" if row.get("present") else "  (already missing when the backup was made)"
        print(
            f"    {row['id']}  session {row.get('session')} segment {row.get('segment')}  "
            f"{row['file_name']}  sha256 {row.get('ciphertext_sha256')}{note}"
        )
    if missing:
        print(
            "  Recording files are not in a backup (they are age-encrypted already). Copy them from the old\n"
            f"  data folder's recordings/ (or your copy of it), e.g. `rsync -a OLD/recordings/ {folder}/`;\n"
            "  each file's `sha256sum` must match `vsession recordings list`."
        )
    print(
        f"Next: start vsession with --data-dir {settings.data_dir}, run `vsession audit verify`, and take\n"
        "the identity file off this server again."
    )
