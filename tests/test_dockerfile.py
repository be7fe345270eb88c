"""The Dockerfile's own commands, run here: its CMD starts a server and its HEALTHCHECK probes it.

There is no Docker engine in CI, so this checks what can be checked without one."""

import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.support import live_server

REPO = Path(__file__).resolve().parent.parent


def instructions() -> dict[str, list[str]]:
    text = (REPO / "Dockerfile").read_text(encoding="utf-8").replace("\\\n", " ")
    found: dict[str, list[str]] = {}
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            word, _, rest = line.strip().partition(" ")
            found.setdefault(word.upper(), []).append(rest.strip())
    return found


def exec_form(value: str) -> list[str]:
    command = json.loads(value)
    assert isinstance(command, list), "use the exec form, so signals reach vsession directly"
    return command


@pytest.fixture
def start_server():
    """live_server.start_server, stopping whatever it started when the test ends."""
    started = []

    def start(*args, **kwargs):
        server = live_server.start_server(*args, **kwargs)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def test_image_basics() -> None:
    found = instructions()
    assert found["FROM"] == ["python:3.11-slim"]
    assert found["USER"] == ["vsession"]
    assert "/data" in found["VOLUME"]
    assert "VSESSION_DATA_DIR=/data" in found["ENV"]
    assert "8443" in found["EXPOSE"]
    installs = [run for run in found["RUN"] if "pip install" in run]
    assert installs and all("[" not in run for run in installs), "no dev or test extras in the image"


def test_cmd_serves_and_healthcheck_probes_it(start_server, tmp_path: Path) -> None:
    found = instructions()
    cmd = exec_form(found["CMD"][0])
    assert cmd[:2] == ["vsession", "serve"]
    server = start_server(tmp_path / "data", *cmd[2:], command=[sys.executable, "-m", *cmd[:2]])
    assert server.url.startswith("https://")

    (healthcheck,) = found["HEALTHCHECK"]
    probe = exec_form(healthcheck.partition(" CMD ")[2])
    assert probe[0] == "python"
    env = {k: v for k, v in os.environ.items() if not k.startswith("VSESSION_")}
    env["VSESSION_PORT"] = str(urlsplit(server.url).port)

    def run_probe() -> int:
        done = subprocess.run([sys.executable, *probe[1:]], env=env, capture_output=True, timeout=30)
        return done.returncode

    assert run_probe() == 0
    assert server.stop() == 0
    assert run_probe() != 0
