"""Secret keys kept as files in the data dir's key folder, never in the database."""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def read_key(path: Path, size: int = 32) -> bytes:
    """Read an existing key; never create one (a new key would make every old entry look forged)."""
    try:
        key = path.read_bytes()
    except FileNotFoundError:
        raise RuntimeError(f"key file {path} is missing") from None
    if len(key) != size:
        raise RuntimeError(f"key file {path} is damaged: expected {size} bytes, found {len(key)}")
    return key


def load_or_create_key(path: Path, size: int = 32) -> bytes:
    """Read a raw key file, creating it (0600, folder 0700) on first use.

    The key lives outside the DB so that a copy of the DB alone cannot forge audit entries
    or decrypt stored TOTP secrets.
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        key = path.read_bytes()
        if len(key) != size:
            raise RuntimeError(
                f"key file {path} is damaged: expected {size} bytes, found {len(key)}"
            ) from None
        return key
    key = secrets.token_bytes(size)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key)
        handle.flush()
        os.fsync(handle.fileno())
    return key
