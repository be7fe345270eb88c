"""A practice's data folder made by the real CLI, its age key, and `vsession` run as a process."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.paths import REPO
from tests.support.practice_key import make_key

Cli = Callable[..., subprocess.CompletedProcess[str]]


def run_cli(*args: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    # Only the settings the test gives: none leak in from the environment the tests run in.
    base = {k: v for k, v in os.environ.items() if not k.startswith("VSESSION_")}
    return subprocess.run(
        [sys.executable, "-m", "vsession", *map(str, args)],
        capture_output=True,
        text=True,
        env=base | (env or {}),
        cwd=REPO,
        timeout=120,
    )


@pytest.fixture(scope="session")
def cli() -> Cli:
    return run_cli


@dataclass(frozen=True)
class Practice:
    data_dir: Path
    identity: Path
    recipient: str

    @property
    def env(self) -> dict[str, str]:
        return {"VSESSION_RECORDING_RECIPIENT": self.recipient}


@pytest.fixture
def practice(tmp_path: Path) -> Practice:
    """A data folder as a first run leaves it: database, key folder, one audit entry."""
    identity, recipient = make_key(tmp_path)
    data_dir = tmp_path / "data"
    made = run_cli("setup-link", "--data-dir", data_dir)
    assert made.returncode == 0, made
    return Practice(data_dir, identity, recipient)
