"""Small things every benchmark script here shares: printing, the version line, a clean exit on
SIGTERM, a server log's tail."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from pathlib import Path
from types import FrameType

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # for vsession and tests.support, when run from scripts/
    sys.path.insert(0, str(REPO))


def say(line: str) -> None:
    print(line, flush=True)


def mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def git_version() -> str:
    with contextlib.suppress(OSError, subprocess.CalledProcessError):
        return subprocess.run(
            ["git", "describe", "--always", "--dirty"], cwd=REPO, capture_output=True, text=True, check=True
        ).stdout.strip()
    return "unknown"


def on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds through the finally blocks that stop every process


def log_tail(log: Path, lines: int = 15) -> str:
    if not log.exists():
        return "(no server log)"
    tail = log.read_text(errors="replace").splitlines()[-lines:]
    return "server log tail:\n  " + "\n  ".join(tail)
