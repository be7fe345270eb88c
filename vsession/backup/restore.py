"""Writing a checked backup into a new, empty data folder. Blocking: run it in a thread.

Only an empty or absent folder is accepted, so a restore can never mix two practices' data or
overwrite a running server's. If a write fails half way, what was written is removed again.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vsession.backup.archive import Contents
from vsession.backup.snapshot import plain_name
from vsession.config import Settings
from vsession.recording.service import recordings_dir

_DIR_MODE = 0o700
_FILE_MODE = 0o600


class RestoreError(Exception):
    """The target cannot take the backup; nothing was changed. One line."""


@dataclass
class _Created:
    """What this restore made, newest last, so a failure can take it back."""

    paths: list[Path]

    def undo(self) -> None:
        for path in reversed(self.paths):
            try:
                path.rmdir() if path.is_dir() else path.unlink()
            except OSError:
                pass  # best effort: the error that brought us here is the one to report


def check_target(settings: Settings) -> None:
    for folder, what in ((settings.data_dir, "data folder"), (settings.key_folder, "key folder")):
        if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
            raise RestoreError(f"the {what} {folder} exists and is not a folder")
        if folder.is_dir() and any(folder.iterdir()):
            raise RestoreError(
                f"the {what} {folder} is not empty; restore into a new, empty one (nothing was changed)"
            )


def write(contents: Contents, settings: Settings) -> None:
    check_target(settings)
    created = _Created([])
    try:
        for folder in (settings.data_dir, settings.key_folder):
            _folder(folder, created)
            os.chmod(folder, _DIR_MODE)  # an empty folder given to us may have been made 0755
        for name, content in sorted(contents.keys.items()):
            _file(settings.key_folder / name, content, created)
        _file(settings.db_path, contents.database, created)
        _folder(recordings_dir(settings), created)
        for folder in {settings.key_folder, settings.data_dir}:
            _sync_folder(folder)
    except OSError as exc:
        created.undo()
        raise RestoreError(f"cannot write the restored files ({exc}); what was written is removed") from None


def _folder(path: Path, created: _Created) -> None:
    if not path.exists():
        _folder(path.parent, created)
        path.mkdir(mode=_DIR_MODE)
        created.paths.append(path)


def _file(path: Path, content: bytes | memoryview, created: _Created) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _FILE_MODE)
    created.paths.append(path)
    with os.fdopen(fd, "wb") as handle:
        os.fchmod(handle.fileno(), _FILE_MODE)
        handle.write(content)
        handle.flush()
        os.fsync(handle.fileno())


def _sync_folder(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def missing_recordings(contents: Contents, settings: Settings) -> list[dict[str, Any]]:
    """Recordings the database lists as kept whose file is not in the new data folder."""
    folder = recordings_dir(settings)
    return [
        row
        for row in contents.recordings
        if row.get("state") != "deleted"
        and not (plain_name(row["file_name"]) and (folder / row["file_name"]).is_file())
    ]
