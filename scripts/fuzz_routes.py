#!/usr/bin/env python3
"""Walk every route of the app with any seed and any number of cases.

The same walk as tests/http/test_route_walk.py (which CI runs with one fixed seed and 3,000 cases):
the real app in this process on a real SQLite file in a temporary directory, two therapists, a
half-enrolled account, sessions, guests and recordings, and hypothesis-made requests to every route
of the router, each checked for a 5xx, a traceback in the reply or the log, and a refusal that
changed the database (tests/support/route_walk.py). Cases are made 5,000 at a time in a fresh
interpreter, the next batch while this one is walked. The seed is printed first, so a failing run can
be replayed with --seed. Exit code 0 if nothing went wrong, 1 otherwise (the data directory is then
kept and its path printed).

    .venv/bin/python scripts/fuzz_routes.py --seed random --cases 100000
    .venv/bin/python scripts/fuzz_routes.py --seed 20260501 --cases 3000
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from aiohttp.test_utils import TestClient, TestServer

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.support.app_client import Server  # noqa: E402
from tests.support.clock import FakeClock  # noqa: E402
from tests.support.route_walk import Figures, walk_seed  # noqa: E402
from tests.support.script_args import positive, seed_of  # noqa: E402
from vsession.app import create_app  # noqa: E402
from vsession.config import load_settings  # noqa: E402


async def run(seed: int, cases: int, workdir: Path) -> Figures:
    settings = load_settings(environ={}, overrides={"data_dir": workdir / "data", "port": 0})
    clock = FakeClock()
    app = create_app(settings, clock=clock)
    client = TestClient(TestServer(app), cookie_jar=aiohttp.DummyCookieJar())
    await client.start_server()
    started = time.monotonic()

    def progress(figures: Figures) -> None:
        if figures.cases % 10_000 == 0:
            took = time.monotonic() - started
            print(f"  {figures.cases} cases, {len(figures.problems)} problems, {took:.0f} s", flush=True)

    try:
        return await walk_seed(Server(client, app, clock, settings), seed, cases, progress=progress)
    finally:
        await client.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seed", type=seed_of, default="random", help="a number, or 'random' (default)")
    parser.add_argument("--cases", type=positive, default=100_000, help="requests to send (default 100000)")
    args = parser.parse_args()
    replay = f".venv/bin/python scripts/fuzz_routes.py --seed {args.seed} --cases {args.cases}"
    print(f"route walk seed: {args.seed} ({args.cases} cases; replay: {replay})", flush=True)
    workdir = Path(tempfile.mkdtemp(prefix="vsession-routes-"))
    started = time.monotonic()
    figures = asyncio.run(run(args.seed, args.cases, workdir))
    print(figures.report())
    print(f"{time.monotonic() - started:.0f} s in all, making the cases included")
    for problem in figures.problems[:50]:
        print(f"\nPROBLEM: {problem}")
    ok = not figures.problems and figures.unsent == 0 and figures.cases == args.cases
    if ok:
        shutil.rmtree(workdir)
    else:
        found = len(figures.problems)
        print(f"\nFAILED with seed {args.seed} ({found} problems; replay: {replay}); data kept in {workdir}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
