"""A live `vsession serve` process, for end-to-end and browser tests and the scripts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.paths import REPO


@dataclass
class LiveServer:
    url: str
    data_dir: Path
    process: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)

    def setup_link(self) -> str:
        """The first-run link `serve` prints after its URL when no therapist exists."""
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if "/setup#t=" in line:
                return line.strip()
        raise RuntimeError("the server printed no setup link")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def start_server(
    data_dir: Path,
    *extra: str,
    command: list[str] | None = None,
    log: Path | None = None,
    environment: dict[str, str] | None = None,
) -> LiveServer:
    """Start `vsession serve --port 0` and wait for the URL line it prints on stdout.
    `log` collects the server's structured log (stderr), access log included."""
    # Only the settings the caller gives: none leak in from the environment the tests run in.
    env = {k: v for k, v in os.environ.items() if not k.startswith("VSESSION_")} | (environment or {})
    cmd = command or [sys.executable, "-m", "vsession", "serve"]
    process = subprocess.Popen(
        [*cmd, "--data-dir", str(data_dir), "--port", "0", *extra],
        stdout=subprocess.PIPE,
        stderr=log.open("w") if log else subprocess.DEVNULL,
        text=True,
        env=env,
        cwd=REPO,
    )
    assert process.stdout is not None
    lines: list[str] = []
    for line in process.stdout:
        lines.append(line.rstrip("\n"))
        if line.startswith(("http://", "https://")):
            return LiveServer(line.strip(), data_dir, process, lines)
    process.wait()
    raise RuntimeError(f"server exited with {process.returncode} before printing its URL: {lines}")
