"""The programs and libraries the test suite uses from Debian, each with the package that provides it.

This is the one list: ./scripts/test runs this file to learn which packages to install, and
tests/conftest.py checks it at session start, so that a missing tool stops the run with one line
naming its package instead of dozens of confusing errors. Run as a script (`python3 -I
tests/support/tools.py`) it prints the Debian packages missing here, space-separated.
"""

from __future__ import annotations

import ctypes
import shutil
from collections.abc import Mapping

# A name with ".so" is a shared library the dynamic loader must find; any other is a program on PATH.
TOOLS: dict[str, str] = {
    "chromium": "chromium",  # tests/browser drive Debian's Chromium through Playwright
    "libatomic.so.1": "libatomic1",  # Playwright's driver (the node binary in its wheel) links it
    "age": "age",  # stock age must decrypt what vsession encrypts
    "age-keygen": "age",
    "ffprobe": "ffmpeg",  # decrypted recordings must play
    "mount": "mount",  # a small tmpfs fills up in tests/consent/test_gate_closing.py
    "umount": "mount",
}


def found(name: str, path: str | None = None) -> bool:
    """Whether `name` is here. `path` replaces PATH when looking up a program."""
    if ".so" in name:
        try:
            ctypes.CDLL(name)
        except OSError:
            return False
        return True
    return shutil.which(name, path=path) is not None


def missing(tools: Mapping[str, str] = TOOLS, path: str | None = None) -> dict[str, str]:
    """The tools that are not here, each with its Debian package."""
    return {name: package for name, package in tools.items() if not found(name, path)}


def message(absent: Mapping[str, str]) -> str:
    return "\n".join(
        f"missing tool {name}: install Debian package {package} (./scripts/test does this)"
        for name, package in absent.items()
    )


def packages(absent: Mapping[str, str]) -> list[str]:
    return list(dict.fromkeys(absent.values()))


if __name__ == "__main__":
    print(" ".join(packages(missing())))
