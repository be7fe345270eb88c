"""The check that stops the suite, naming the Debian package, when a tool the tests need is missing."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

from tests.support.tools import TOOLS, message, missing, packages

REPO = Path(__file__).resolve().parent.parent
TOOLS_SCRIPT = REPO / "tests" / "support" / "tools.py"
# Calls whose first argument names a program: subprocess.run(["age", ...]), shutil.which("ffprobe"), ...
RUNNERS = {
    "subprocess": {"run", "Popen", "call", "check_call", "check_output"},
    "asyncio": {"create_subprocess_exec"},
    "shutil": {"which"},
    None: {"which", "tool", "create_subprocess_exec"},  # imported names; tool() in test_age.py
}


def test_a_program_missing_from_path_is_named_with_its_package(tmp_path: Path) -> None:
    absent = missing(path=str(tmp_path))
    assert absent["ffprobe"] == "ffmpeg"
    assert absent["age-keygen"] == "age"
    assert set(packages(absent)) >= {"age", "ffmpeg", "chromium", "mount"}
    lines = message(absent).splitlines()
    assert "missing tool ffprobe: install Debian package ffmpeg (./scripts/test does this)" in lines
    assert len(lines) == len(absent)


def test_a_program_on_path_is_found(tmp_path: Path) -> None:
    fake = tmp_path / "age"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    assert missing({"age": "age", "ffprobe": "ffmpeg"}, path=str(tmp_path)) == {"ffprobe": "ffmpeg"}


def test_a_library_the_loader_cannot_find_is_named_with_its_package() -> None:
    tools = {"libvsession-nowhere.so.1": "libnowhere1", "libc.so.6": "libc6"}
    assert missing(tools) == {"libvsession-nowhere.so.1": "libnowhere1"}


def test_the_script_prints_the_packages_scripts_test_installs(tmp_path: Path) -> None:
    def run(path: str) -> str:
        env = {**os.environ, "PATH": path}
        done = subprocess.run(
            [sys.executable, "-I", str(TOOLS_SCRIPT)], env=env, capture_output=True, text=True, check=True
        )
        return done.stdout.strip()

    assert run(os.environ["PATH"]) == ""  # this machine has them all
    printed = run(str(tmp_path)).split()
    assert sorted(printed) == sorted(set(printed))
    assert {"age", "ffmpeg", "chromium", "mount"} <= set(printed)
    assert "libatomic1" not in printed  # found by the loader, not on PATH
    assert "tests/support/tools.py" in (REPO / "scripts" / "test").read_text()


def test_the_session_stops_with_one_line_per_missing_tool(tmp_path: Path) -> None:
    env = {**os.environ, "PATH": str(tmp_path)}
    one_test = f"{__file__}::test_a_program_on_path_is_found"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", one_test],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 4, done.stdout + done.stderr
    out = done.stdout + done.stderr
    assert "missing tool age: install Debian package age (./scripts/test does this)" in out
    assert "missing tool chromium: install Debian package chromium (./scripts/test does this)" in out
    assert " passed" not in out  # no test ran


def programs_run_in(folder: Path) -> set[str]:
    names: set[str] = set()
    for path in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Call) and node.args):
                continue
            func = node.func
            if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
                module, called = func.value.id, func.attr
            elif isinstance(func, ast.Name):
                module, called = None, func.id
            else:
                continue
            if called not in RUNNERS.get(module, set()):
                continue
            first = node.args[0]
            if isinstance(first, ast.List | ast.Tuple) and first.elts:
                first = first.elts[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                names.add(first.value)
    return names


def test_the_scan_sees_programs_and_nothing_else(tmp_path: Path) -> None:
    (tmp_path / "t.py").write_text(
        "subprocess.run(['turnserver', '-n'])\nshutil.which('caddy')\nworld.run(('end',))\n"
        "subprocess.run([sys.executable, '-m', 'vsession'])\n"
    )
    assert programs_run_in(tmp_path) == {"turnserver", "caddy"}


def test_every_program_the_tests_run_is_listed() -> None:
    found = programs_run_in(REPO / "tests")
    assert {"age", "age-keygen", "ffprobe"} <= found  # the scan sees the calls it is meant to see
    unlisted = found - set(TOOLS)
    assert not unlisted, f"add these to TOOLS in tests/support/tools.py with their Debian package: {unlisted}"
