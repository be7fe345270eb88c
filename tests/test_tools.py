"""The check that stops the suite, naming the Debian package, when a tool the tests need is missing."""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from tests.support.tools import TOOLS, message, missing, node_packages, packages

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
    assert set(packages(absent)) >= {"age", "ffmpeg", "chromium", "mount", "firefox-esr", "nodejs", "npm"}
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
    assert {"age", "ffmpeg", "chromium", "mount", "firefox-esr", "nodejs", "npm"} <= set(printed)
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


def node_project(root: Path, installed: dict[str, str]) -> Path:
    """package.json asking for a and b, package-lock.json locking them, and `installed` in node_modules/."""
    (root / "package.json").write_text(json.dumps({"devDependencies": {"a": "1.0.0", "b": "~2.0.1"}}))
    locked = {"": {}, "node_modules/a": {"version": "1.0.0"}, "node_modules/b": {"version": "2.0.3"}}
    (root / "package-lock.json").write_text(json.dumps({"lockfileVersion": 3, "packages": locked}))
    for name, version in installed.items():
        (root / "node_modules" / name).mkdir(parents=True, exist_ok=True)
        (root / "node_modules" / name / "package.json").write_text(json.dumps({"version": version}))
    return root


def test_a_node_package_absent_or_not_at_its_locked_version_is_missing(tmp_path: Path) -> None:
    root = node_project(tmp_path, {"a": "1.0.0", "b": "2.0.1"})
    tools = node_packages(root)
    assert tools == {"node_modules/a": "npm ci", "node_modules/b": "npm ci"}
    assert missing(tools, root=root) == {"node_modules/b": "npm ci"}  # 2.0.1 is in range, but not locked
    assert message(missing(tools, root=root)) == (
        "missing node_modules/b at package-lock.json's version: run `npm ci` (./scripts/test does this)"
    )
    assert packages(missing(tools, root=root)) == []  # no Debian package for it
    node_project(tmp_path, {"b": "2.0.3"})
    assert missing(tools, root=root) == {}
    shutil.rmtree(root / "node_modules/a")
    assert missing(tools, root=root) == {"node_modules/a": "npm ci"}


def test_scripts_test_runs_npm_ci_only_when_a_package_is_due(tmp_path: Path) -> None:
    (tmp_path / "repo").mkdir()
    root = node_project(tmp_path / "repo", {"a": "1.0.0"})
    (root / "tests" / "support").mkdir(parents=True)
    shutil.copy(TOOLS_SCRIPT, root / "tests" / "support" / "tools.py")
    # A stand-in npm that notes how it was called and installs what the lockfile says.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    npm = bin_dir / "npm"
    npm.write_text(
        "#!/bin/sh\n"
        'echo "$* PUPPETEER_SKIP_DOWNLOAD=$PUPPETEER_SKIP_DOWNLOAD" >> "$NPM_CALLS"\n'
        'mkdir -p node_modules/b && echo \'{"version": "2.0.3"}\' > node_modules/b/package.json\n'
    )
    npm.chmod(0o755)
    calls = tmp_path / "npm-calls"
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "NPM_CALLS": str(calls)}
    script = f"source {REPO / 'scripts' / 'lib.sh'} && ensure_node_modules"
    for _ in range(2):
        subprocess.run(["bash", "-c", script], cwd=root, env=env, check=True)
    assert calls.read_text().splitlines() == ["ci --no-audit --no-fund PUPPETEER_SKIP_DOWNLOAD=1"]
    printed = subprocess.run(
        [sys.executable, "-I", str(TOOLS_SCRIPT), "--npm"], capture_output=True, text=True, check=True
    )
    assert printed.stdout.strip() == ""  # this machine has package-lock.json's packages


def test_package_json_pins_what_the_browser_tests_use() -> None:
    manifest = json.loads((REPO / "package.json").read_text())
    lock = json.loads((REPO / "package-lock.json").read_text())
    wanted = manifest["devDependencies"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", wanted["axe-core"])  # exact: a new rule must not fail a page
    assert wanted["puppeteer-core"].startswith("~")  # patch releases only: the BiDi API it drives
    assert lock["packages"][""]["devDependencies"] == wanted  # else `npm ci` refuses to install
    # Where each package was downloaded from is the registry configured here, not recorded.
    assert all("resolved" not in entry for entry in lock["packages"].values())


def node_packages_used_in(folder: Path) -> set[str]:
    names: set[str] = set()
    for path in folder.rglob("*.mjs"):
        names |= set(re.findall(r"""^import .*from ["']([^"':]+)["']""", path.read_text(), re.MULTILINE))
    for path in folder.rglob("*.py"):
        names |= set(re.findall(r'"node_modules" / "([\w@./-]+)"', path.read_text()))
    return names


def test_every_node_package_the_tests_use_is_in_package_json() -> None:
    used = node_packages_used_in(REPO / "tests")
    assert {"puppeteer-core", "axe-core"} <= used  # the scan sees what it is meant to see
    unlisted = {f"node_modules/{name}" for name in used} - set(TOOLS)
    assert not unlisted, f"add to package.json (PUPPETEER_SKIP_DOWNLOAD=1 npm install -D ...): {unlisted}"
