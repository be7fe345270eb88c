"""Hypothesis draws that depend on the seed alone, made in a fresh interpreter.

Hypothesis also draws constants it finds in the source of the project's modules loaded in the
process (hypothesis.internal.conjecture.providers), and reads them from a cache it fills on first
use: the same seed gave other draws under pytest, in a script, and on a cold cache. A fresh
interpreter that imports only the generating module (hypothesis skips tests/) depends on the seed
alone."""

from __future__ import annotations

import asyncio
import os
import pickle
import subprocess
import sys
from typing import Any

from tests.support.paths import REPO

_CHILD = (
    "import importlib, pickle, sys; "
    "g = importlib.import_module(sys.argv[1]).generate_in_this_process; "
    "pickle.dump(g(int(sys.argv[2]), int(sys.argv[3])), sys.stdout.buffer)"
)


async def draw_in_fresh_interpreter(module: str, count: int, seed: int) -> Any:
    """`module.generate_in_this_process(count, seed)`, run in a child interpreter."""
    env = {**os.environ, "PYTHONHASHSEED": "0"}  # one less thing a run could depend on
    child = await asyncio.create_subprocess_exec(
        *(sys.executable, "-c", _CHILD, module, str(count), str(seed)),
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out, err = await child.communicate()
    if child.returncode != 0:
        raise RuntimeError(f"drawing from {module} failed: {err.decode()[-2000:]}")
    return pickle.loads(out)
