"""A practice's age key for recording tests, and stock `age` to decrypt what the recorder wrote."""

from __future__ import annotations

import subprocess
from pathlib import Path

from vsession.recording import age


def make_key(tmp_path: Path) -> tuple[Path, str]:
    """A fresh identity file in `tmp_path`, and its recipient."""
    identity, recipient = age.generate_identity()
    path = tmp_path / "practice-identity.txt"
    age.write_identity_file(path, identity, recipient)
    return path, recipient


def stock_age_decrypt(identity: Path, encrypted: Path, plain: Path) -> None:
    subprocess.run(["age", "-d", "-i", str(identity), "-o", str(plain), str(encrypted)], check=True)
