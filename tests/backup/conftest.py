"""A practice's data folder made by the real CLI, its age key, and `vsession` run as a process."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.cli import run_vsession
from tests.support.practice_key import make_key

Cli = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(scope="session")
def cli() -> Cli:
    return run_vsession


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
    made = run_vsession("setup-link", "--data-dir", data_dir)
    assert made.returncode == 0, made
    return Practice(data_dir, identity, recipient)
