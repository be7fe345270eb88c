"""The programs and libraries the test suite uses from Debian, each with the package that provides it,
and the npm packages of package.json, which `npm ci` installs into node_modules/.

This is the one list: ./scripts/test runs this file to learn what to install, and tests/conftest.py
checks it at session start, so that a missing tool stops the run with one line naming its package
instead of dozens of confusing errors. Run as a script (`python3 -I tests/support/tools.py`) it prints
the Debian packages missing here, space-separated; with `--npm`, the node_modules/ folders missing or
not at package-lock.json's version (then `npm ci` is due).
"""

from __future__ import annotations

import ctypes
import json
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
NODE_MODULES = "node_modules/"
NPM_CI = "npm ci"  # what provides a node_modules/ entry, in place of a Debian package

# A name with ".so" is a shared library the dynamic loader must find; one under node_modules/ is an
# npm package at its locked version; any other is a program on PATH.
DEBIAN: dict[str, str] = {
    "chromium": "chromium",  # tests/browser drive Debian's Chromium through Playwright
    "libatomic.so.1": "libatomic1",  # Playwright's driver (the node binary in its wheel) links it
    "firefox-esr": "firefox-esr",  # tests/browser/test_firefox.py drives it through puppeteer-core
    "node": "nodejs",  # runs tests/support/firefox_client.mjs
    "npm": "npm",  # `npm ci` installs node_modules/ from package-lock.json
    "age": "age",  # stock age must decrypt what vsession encrypts
    "age-keygen": "age",
    "ffprobe": "ffmpeg",  # decrypted recordings must play
    "ffmpeg": "ffmpeg",  # and show what was sent (tests/browser/test_firefox.py reads a frame)
    "bash": "bash",  # runs scripts/lib.sh's functions in tests/test_tools.py
    "mount": "mount",  # a small tmpfs fills up in tests/consent/test_gate_closing.py
    "umount": "mount",
    "turnserver": "coturn",  # tests/sfu/test_turn.py, tests/browser/test_turn_call.py: real coturn
    "caddy": "caddy",  # tests/http/test_proxy.py: vsession behind a real reverse proxy
    "debootstrap": "debootstrap",  # tests/test_image.py: the base image the Dockerfile builds on
    "buildah": "buildah",  # builds and runs the real Dockerfile (no Docker engine here)
    "podman": "podman",  # imports the debootstrapped root as debian:bookworm-slim
    "tar": "tar",  # packs that root for `podman import`
    "nice": "coreutils",  # the image build runs at a lower priority than the calls beside it
    "janus": "janus",  # tests/test_scripts.py: bench_relay's same step on Janus (issue 14's baseline)
    "gcc": "gcc",  # compiles scripts/janus/'s LD_PRELOAD shim, so Janus gathers on loopback
}


def node_packages(root: Path = ROOT) -> dict[str, str]:
    """package.json's packages, each as the node_modules/ folder `npm ci` puts it in."""
    try:
        manifest = json.loads((root / "package.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    names = {**manifest.get("dependencies", {}), **manifest.get("devDependencies", {})}
    return {NODE_MODULES + name: NPM_CI for name in names}


TOOLS: dict[str, str] = {**DEBIAN, **node_packages()}


def _version(manifest: Path, key: str | None = None) -> str | None:
    try:
        data = json.loads(manifest.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    if key is not None:
        data = data.get("packages", {}).get(key, {})
    return data.get("version")


def found(name: str, path: str | None = None, root: Path = ROOT) -> bool:
    """Whether `name` is here. `path` replaces PATH when looking up a program; `root` holds
    package.json, package-lock.json and node_modules/."""
    if name.startswith(NODE_MODULES):
        locked = _version(root / "package-lock.json", name)
        return locked is not None and _version(root / name / "package.json") == locked
    if ".so" in name:
        try:
            ctypes.CDLL(name)
        except OSError:
            return False
        return True
    return shutil.which(name, path=path) is not None


def missing(tools: Mapping[str, str] = TOOLS, path: str | None = None, root: Path = ROOT) -> dict[str, str]:
    """The tools that are not here, each with its Debian package (or `npm ci`)."""
    return {name: package for name, package in tools.items() if not found(name, path, root)}


def message(absent: Mapping[str, str]) -> str:
    return "\n".join(
        f"missing {name} at package-lock.json's version: run `{package}` (./scripts/test does this)"
        if name.startswith(NODE_MODULES)
        else f"missing tool {name}: install Debian package {package} (./scripts/test does this)"
        for name, package in absent.items()
    )


def packages(absent: Mapping[str, str]) -> list[str]:
    """The Debian packages to install; node_modules/ entries come from `npm ci` instead."""
    return list(dict.fromkeys(p for name, p in absent.items() if not name.startswith(NODE_MODULES)))


def stale_node_modules(absent: Mapping[str, str]) -> list[str]:
    return [name for name in absent if name.startswith(NODE_MODULES)]


if __name__ == "__main__":
    if sys.argv[1:] == ["--npm"]:
        print(" ".join(stale_node_modules(missing())))
    else:
        print(" ".join(packages(missing())))
