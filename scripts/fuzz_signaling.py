#!/usr/bin/env python3
"""Fuzz a live server's signalling with any seed and any number of examples.

The same fuzzing as tests/signaling/test_fuzz.py (which CI runs with one fixed seed): a fresh
`vsession serve` (loopback ICE) in a temporary directory, a therapist and two admitted clients,
hypothesis-made frames over their sockets with every reply checked, then the server's health, its
log and a normal call between two real aiortc peers. The seed is printed first, so a failing run
can be replayed with --seed. Exit code 0 if nothing went wrong, 1 otherwise (the server's data
directory and log are then kept and their path printed).

    .venv/bin/python scripts/fuzz_signaling.py --seed random --examples 5000
    .venv/bin/python scripts/fuzz_signaling.py --seed 1234567 --examples 510
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.support.call_server import start_call_server  # noqa: E402
from tests.support.fuzz_frames import PER_EXAMPLE  # noqa: E402
from tests.support.fuzz_run import fuzz_then_call  # noqa: E402
from tests.support.script_args import positive, seed_of  # noqa: E402


async def run(seed: int, examples: int, workdir: Path) -> bool:
    log = workdir / "server.log"
    server = start_call_server(workdir, log=log)
    try:
        figures = await fuzz_then_call(server, log, seed, examples)
    finally:
        server.stop()
    print(figures.report())
    for problem in figures.problems:
        print(f"\nPROBLEM: {problem}")
    return not figures.problems


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seed", type=seed_of, default="random", help="a number, or 'random' (default)")
    parser.add_argument(
        "--examples", type=positive, default=510, help=f"hypothesis examples of {PER_EXAMPLE} frames each"
    )
    args = parser.parse_args()
    replay = f".venv/bin/python scripts/fuzz_signaling.py --seed {args.seed} --examples {args.examples}"
    print(f"fuzz seed: {args.seed} ({args.examples * PER_EXAMPLE} frames; replay: {replay})", flush=True)
    workdir = Path(tempfile.mkdtemp(prefix="vsession-fuzz-"))
    ok = False
    try:
        ok = asyncio.run(run(args.seed, args.examples, workdir))
    finally:
        if ok:
            shutil.rmtree(workdir)
        else:
            print(f"\nFAILED with seed {args.seed} (replay: {replay}); server data and log kept in {workdir}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
