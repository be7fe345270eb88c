"""End to end, with real aiortc peers through an in-process server (issue 10): rounds of a
withdrawal racing an accept, a newcomer, a rejoin and the therapist's ask-again, with every segment
decrypted by stock `age` and every recorded frame's counter read; and rounds of a page reload
racing the removal of the room it emptied, after which the client and the therapist must be in
one call with media flowing both ways. tests/support/race_rounds.py and rejoin_rounds.py say what
each round does and checks.

CI runs 20 and 10 rounds from a fixed seed; scripts/race_rounds.py runs any number with any seed:
    .venv/bin/python scripts/race_rounds.py --rounds 100 --rejoin-rounds 50 --seed random
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.race_rounds import KINDS, withdrawal_rounds, withdrawal_summary
from tests.support.rejoin_rounds import rejoin_rounds, rejoin_summary

SEED = 20261129
WITHDRAWAL_ROUNDS = 20
REJOIN_ROUNDS = 10


@pytest.mark.slow  # about 2 s a round: 20 rounds take over a minute. Runs in CI all the same.
async def test_withdrawal_races_record_nothing_after_the_withdrawal(tmp_path: Path) -> None:
    results = await withdrawal_rounds(tmp_path, WITHDRAWAL_ROUNDS, SEED, lambda r: print(r.line()))
    print(withdrawal_summary(results))
    failed = [r.line() for r in results if r.failures]
    assert not failed, f"seed {SEED}: {failed[0]}"
    assert len(results) == WITHDRAWAL_ROUNDS
    assert {r.kind for r in results} == set(KINDS)
    # Not vacuous: the files were read, and held frames right up to a withdrawal.
    assert all(r.segments > 0 for r in results) and any(r.cut_video for r in results)


async def test_a_reload_racing_the_rooms_removal_never_splits_the_call(tmp_path: Path) -> None:
    results = await rejoin_rounds(tmp_path, REJOIN_ROUNDS, SEED, lambda r: print(r.line()))
    print(rejoin_summary(results))
    failed = [r.line() for r in results if r.failures]
    assert not failed, f"seed {SEED}: {failed[0]}"
    assert len(results) == REJOIN_ROUNDS
