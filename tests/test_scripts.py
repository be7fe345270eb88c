"""The two commands of the README: ./scripts/run brings up a server; CI runs ./scripts/test."""

import json
import os
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def test_scripts_run_brings_up_a_server(servers, tmp_path: Path) -> None:
    data = tmp_path / "fresh" / "data"
    server = servers(data, command=[str(REPO / "scripts" / "run")])
    with urllib.request.urlopen(server.url + "/healthz", timeout=10) as response:
        assert response.status == 200
        assert json.loads(response.read()) == {"status": "ok"}
    assert server.stop() == 0  # `exec` in the script: the signal reaches the server itself
    assert data.is_dir()
    assert (data / "vsession.sqlite3").is_file()


@pytest.mark.parametrize("name", ["run", "test"])
def test_scripts_are_executable(name: str) -> None:
    assert os.access(REPO / "scripts" / name, os.X_OK)


def test_ci_runs_the_test_script() -> None:
    ci = REPO / ".ci" / "run"
    assert os.access(ci, os.X_OK)
    commands = [
        line.strip()
        for line in ci.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert len(commands) == 1, commands
    assert "scripts/test" in commands[0]
