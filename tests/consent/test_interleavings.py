"""Consent under concurrency: random schedules of concurrent events over 2-4 participants, run
through the real consent machine, room membership and recording service on a scheduler that
shuffles every await, with the invariant checked after every step (tests/support/consent_world.py).

CI runs a fixed-seed search of at least 5,000 schedules; `scripts/consent_interleavings.py` runs
any number with any seed. The regression cases are schedules the search found on the code before
issue 10's fix, one for each race it reported."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings

from tests.support.consent_world import REGRESSIONS, Bench, Schedule, schedules
from tests.support.scheduler import Violation

SCHEDULES = 5_000


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bench]:
    bench = Bench(tmp_path_factory.mktemp("interleavings"))
    yield bench
    bench.close()


# Before the fix in the next commit, every one of these fails: strict, so a pass is an error.
@pytest.mark.xfail(strict=True, raises=Violation, reason="the races of issue 10, fixed in the next commit")
@pytest.mark.parametrize("name", sorted(REGRESSIONS))
def test_regression_schedules(bench: Bench, name: str) -> None:
    bench.run(REGRESSIONS[name])


@pytest.mark.skip(reason="fails on this commit (the races of issue 10); enabled with the fix")
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
