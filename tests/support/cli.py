"""The admin's command line, run as the admin would: `python -m vsession ARGS` in a new process."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from tests.support.paths import REPO


def run_vsession(
    *args: str | Path, env: Mapping[str, str] | None = None, cwd: Path = REPO, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Only the settings the test gives in `env`: none leak in from the environment the tests run in."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("VSESSION_")}
    return subprocess.run(
        [sys.executable, "-m", "vsession", *map(str, args)],
        capture_output=True,
        text=True,
        env={**clean, **(env or {})},
        cwd=cwd,
        timeout=timeout,
        check=False,
    )
