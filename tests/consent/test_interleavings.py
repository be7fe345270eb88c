"""Consent under concurrency: random schedules of concurrent events over 2-4 participants, run
through the real consent machine, room membership and recording service on a scheduler that
shuffles every await, with the invariant checked after every step (tests/support/consent_world.py).

CI runs a fixed-seed search of 5,000 schedules; `scripts/consent_interleavings.py` runs any number
with any seed. The regression cases are schedules the search found on the code before issue 10's
fix (commit df4c6d2 shows each of them failing there)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings

from tests.support.consent_world import REGRESSIONS, Bench, Schedule, schedules

SCHEDULES = 5_000


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bench]:
    bench = Bench(tmp_path_factory.mktemp("interleavings"))
    yield bench
    bench.close()


@pytest.mark.parametrize("name", sorted(REGRESSIONS))
@pytest.mark.parametrize("seed", [None, 1, 2, 3, 4, 5, 6, 7, 8, 9])
def test_regression_schedules(bench: Bench, name: str, seed: int | None) -> None:
    """Each race's schedule, with the seed that found it and nine more."""
    schedule = REGRESSIONS[name]
    for delay in (0, 1, 3):
        bench.run(Schedule(schedule.participants, schedule.batches, seed or schedule.seed, delay))


@settings(
    max_examples=SCHEDULES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
@given(schedule=schedules())
def test_random_schedules_keep_the_invariant(bench: Bench, schedule: Schedule) -> None:
    bench.run(schedule)
