#!/usr/bin/env python3
"""End-to-end race rounds (issue 10), any number of them from a seed, with the code the CI test
tests/consent/test_race_rounds.py runs (tests/support/race_rounds.py says what each round does and
checks). Prints every round and a summary; exits 1 if any round failed.

    .venv/bin/python scripts/race_rounds.py --rounds 100 --rejoin-rounds 50 --seed random
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.race_rounds import withdrawal_rounds, withdrawal_summary
from tests.support.rejoin_rounds import rejoin_rounds, rejoin_summary
from tests.support.script_args import seed_of


async def run(rounds: int, rejoins: int, seed: int, keep_going: bool) -> bool:
    with tempfile.TemporaryDirectory(prefix="race-rounds-") as root:
        started = time.monotonic()
        withdrawals = await withdrawal_rounds(
            Path(root), rounds, seed, lambda r: print(r.line(), flush=True), keep_going
        )
        middle = time.monotonic()
        rejoined = await rejoin_rounds(
            Path(root), rejoins, seed, lambda r: print(r.line(), flush=True), keep_going
        )
        ended = time.monotonic()
    print(f"seed {seed}")
    if rounds:
        print(f"{withdrawal_summary(withdrawals)}\n  {middle - started:.0f} s")
    if rejoins:
        print(f"{rejoin_summary(rejoined)}\n  {ended - middle:.0f} s")
    complete = len(withdrawals) == rounds and len(rejoined) == rejoins
    return complete and not any(r.failures for r in [*withdrawals, *rejoined])


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=100, help="withdrawal rounds")
    parser.add_argument("--rejoin-rounds", type=int, default=50)
    parser.add_argument("--seed", type=seed_of, default="0", help="an integer, or 'random'")
    parser.add_argument(
        "--stop-first",
        action="store_true",
        help="stop at the first failed round (else go on in a fresh call)",
    )
    args = parser.parse_args()
    seed = args.seed
    print(f"seed {seed}: {args.rounds} withdrawal rounds, {args.rejoin_rounds} rejoin rounds", flush=True)
    return 0 if asyncio.run(run(args.rounds, args.rejoin_rounds, seed, not args.stop_first)) else 1


if __name__ == "__main__":
    sys.exit(main())
