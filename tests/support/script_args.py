"""Argument types the evidence scripts share: a seed that can be drawn at random, and counts."""

from __future__ import annotations

import argparse
import random


def seed_of(value: str) -> int:
    """`--seed N` or `--seed random` (a fresh 32-bit seed, printed by the script so it can be replayed)."""
    if value == "random":
        return random.SystemRandom().randrange(2**32)
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError("a whole number or 'random'") from None


def positive(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError("a whole number of at least 1")
    return int(value)
