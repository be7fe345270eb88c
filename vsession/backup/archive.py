"""The backup file: a tar archive inside an age file, so stock tools open it too
(`age -d -i identity backup.age | tar -t`).

Members, in this order:

    backup.json        format, vsession version, schema, time, and what the other members are
    vsession.sqlite3   the database image (vsession/backup/snapshot.py)
    keys/<name>        each file of the key folder
    recordings.json    the manifest of recordings, whose files are not in the backup

Reading checks every member before anything is written: a backup is only ever restored whole.
"""

from __future__ import annotations

import hashlib
import io
import json
import sqlite3
import tarfile
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO, Any

from vsession import __version__
from vsession.backup.snapshot import Snapshot, open_image, plain_name
from vsession.store.migrations import MIGRATIONS

FORMAT = "vsession-backup/1"
INFO = "backup.json"
DATABASE = "vsession.sqlite3"
KEYS = "keys/"
MANIFEST = "recordings.json"
# Tar blocks go to the encrypting writer in pieces this big, so it seals many chunks per fsync.
_BUFFER = 1024 * 1024
_NOTE = (
    "Recording files are not in this backup: they are age-encrypted already. Copy the data "
    "folder's recordings/ folder separately."
)


class ArchiveError(Exception):
    """The decrypted backup is not one this vsession can restore; the message says why."""


@dataclass(frozen=True)
class Contents:
    info: dict[str, Any]
    database: memoryview  # a view into the decrypted archive: restoring costs no extra copy
    keys: dict[str, bytes]
    recordings: list[dict[str, Any]]


def write(out: IO[bytes], snapshot: Snapshot, created: datetime) -> dict[str, Any]:
    """Write the archive for `snapshot` to `out` (the encrypting writer); returns backup.json."""
    info = {
        "format": FORMAT,
        "vsession": __version__,
        "schema": snapshot.schema,
        "created": created.astimezone(UTC).isoformat(timespec="seconds"),
        "database": {
            "name": DATABASE,
            "bytes": len(snapshot.database),
            "sha256": hashlib.sha256(snapshot.database).hexdigest(),
        },
        "keys": sorted(snapshot.keys),
        "recordings": len(snapshot.recordings),
    }
    manifest = {"note": _NOTE, "recordings": snapshot.recordings}
    mtime = int(created.timestamp())
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT, bufsize=_BUFFER) as tar:
        _add(tar, INFO, _json(info), mtime)
        _add(tar, DATABASE, snapshot.database, mtime)
        for name, content in sorted(snapshot.keys.items()):
            _add(tar, KEYS + name, content, mtime)
        _add(tar, MANIFEST, _json(manifest), mtime)
    return info


def _json(value: Any) -> bytes:
    return (json.dumps(value, indent=2, sort_keys=True) + "\n").encode()


def _add(tar: tarfile.TarFile, name: str, content: bytes, mtime: int) -> None:
    member = tarfile.TarInfo(name)
    member.size = len(content)
    member.mode = 0o600
    member.mtime = mtime
    tar.addfile(member, io.BytesIO(content))


def read(data: bytes) -> Contents:
    """Parse and check a decrypted archive, in memory."""
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
            members = _members(tar, memoryview(data))
    except (tarfile.TarError, ValueError, EOFError) as exc:
        raise ArchiveError(f"the decrypted backup is not a readable archive ({exc})") from None
    info = _info(members.pop(INFO, None))
    database = members.pop(DATABASE, None)
    if database is None:
        raise ArchiveError(f"the backup has no {DATABASE}")
    if hashlib.sha256(database).hexdigest() != info["database"].get("sha256"):
        raise ArchiveError("the database in the backup does not match the checksum in backup.json")
    _check_database(database, info["schema"])
    manifest = members.pop(MANIFEST, None)
    recordings = _recordings(manifest)
    keys = {name.removeprefix(KEYS): bytes(view) for name, view in members.items() if name.startswith(KEYS)}
    if unexpected := sorted(set(members) - {KEYS + name for name in keys}):
        raise ArchiveError(f"the backup holds unexpected members: {', '.join(unexpected)}")
    if sorted(keys) != info["keys"]:
        raise ArchiveError("the key files in the backup differ from the list in backup.json")
    return Contents(info, database, keys, recordings)


def _members(tar: tarfile.TarFile, data: memoryview) -> dict[str, memoryview]:
    found: dict[str, memoryview] = {}
    for member in tar.getmembers():
        name = member.name
        key = name.removeprefix(KEYS)
        if (
            not member.isreg()
            or member.sparse is not None
            or not (name in (INFO, DATABASE, MANIFEST) or (name.startswith(KEYS) and plain_name(key)))
        ):
            # Links, folders and odd paths ("../x", "/etc/x") are never written by `backup`.
            raise ArchiveError(f"the backup holds a member vsession never writes: {name!r}")
        if name in found:
            raise ArchiveError(f"the backup holds {name!r} twice")
        end = member.offset_data + member.size
        if end > len(data):
            raise ArchiveError(f"the backup ends inside {name!r}")
        found[name] = data[member.offset_data : end]  # plain tar: a member's bytes lie there in one piece
    return found


def _info(raw: memoryview | None) -> dict[str, Any]:
    if raw is None:
        raise ArchiveError(f"the backup has no {INFO}: it was not made by `vsession backup`")
    try:
        info = json.loads(bytes(raw))
    except ValueError:
        raise ArchiveError(f"{INFO} in the backup is not valid JSON") from None
    if not isinstance(info, dict) or info.get("format") != FORMAT:
        found = info.get("format") if isinstance(info, dict) else None
        raise ArchiveError(f"the backup's format is {found!r}; this vsession restores {FORMAT!r}")
    schema = info.get("schema")
    if not isinstance(schema, int) or not isinstance(info.get("database"), dict):
        raise ArchiveError(f"{INFO} in the backup lacks its schema or database entry")
    if schema > len(MIGRATIONS):
        raise ArchiveError(
            f"the backup is of database schema v{schema}, made by vsession {info.get('vsession')}; this "
            f"vsession ({__version__}) knows up to v{len(MIGRATIONS)}: restore with that version or newer"
        )
    if not isinstance(info.get("keys"), list):
        raise ArchiveError(f"{INFO} in the backup lacks its list of key files")
    return info


def _check_database(image: memoryview, schema: int) -> None:
    try:
        with closing(open_image(image)) as conn:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            verdict = [row[0] for row in conn.execute("PRAGMA integrity_check").fetchall()]
    except sqlite3.Error as exc:
        raise ArchiveError(f"the database in the backup does not open ({exc})") from None
    if version != schema:
        raise ArchiveError(f"the database in the backup is schema v{version}, backup.json says v{schema}")
    if verdict != ["ok"]:
        raise ArchiveError(f"the database in the backup fails SQLite's integrity check: {verdict[0]}")


def _recordings(raw: memoryview | None) -> list[dict[str, Any]]:
    if raw is None:
        raise ArchiveError(f"the backup has no {MANIFEST}")
    try:
        manifest = json.loads(bytes(raw))
    except ValueError:
        raise ArchiveError(f"{MANIFEST} in the backup is not valid JSON") from None
    rows = manifest.get("recordings") if isinstance(manifest, dict) else None
    if not isinstance(rows, list) or not all(
        isinstance(row, dict) and isinstance(row.get("id"), str) and isinstance(row.get("file_name"), str)
        for row in rows
    ):
        raise ArchiveError(f"{MANIFEST} in the backup is not a list of recordings")
    return rows
