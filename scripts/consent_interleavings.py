#!/usr/bin/env python3
"""Search consent interleavings: any number of random schedules from a seed (the CI test runs a
fixed-seed search with hypothesis). Violations are grouped by kind, each with its first schedule,
which tests/consent/test_interleavings.py can take as a regression case.

    .venv/bin/python scripts/consent_interleavings.py --schedules 20000 --seed random
"""

from __future__ import annotations

import argparse
import logging
import random
import re
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.consent_world import Bench, random_schedule
from tests.support.scheduler import Violation
from tests.support.script_args import seed_of


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--schedules", type=int, default=5000)
    parser.add_argument("--seed", type=seed_of, default="0", help="an integer, or 'random'")
    parser.add_argument("--stop-first", action="store_true", help="stop at the first violation")
    args = parser.parse_args()
    seed = args.seed
    print(f"seed {seed}, {args.schedules} schedules", flush=True)

    logging.disable(logging.CRITICAL)  # the recorder logs each injected failure
    found: dict[str, tuple[int, object, str]] = {}
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as root:
        bench = Bench(Path(root))
        for index in range(args.schedules):
            schedule = random_schedule(random.Random(f"{seed}:{index}"))
            try:
                bench.run(schedule)
            except Violation as exc:
                kind = re.sub(r"\b(s\d|t|\d+)\b", "#", str(exc))[:90]
                count, first, text = found.get(kind, (0, schedule, str(exc)))
                found[kind] = (count + 1, first, text)
                if args.stop_first:
                    break
        bench.close()
    elapsed = time.monotonic() - started
    print(f"{index + 1} schedules in {elapsed:.0f} s ({(index + 1) / elapsed:.0f}/s); violations:")
    for _kind, (count, first, text) in sorted(found.items(), key=lambda item: -item[1][0]):
        print(f"  {count:6}  {text}\n          first: {first}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
