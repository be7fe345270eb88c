"""One line per check: its level, what it found and how to fix it."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Level(enum.IntEnum):
    OK = 0
    WARN = 1
    PROBLEM = 2


@dataclass(frozen=True)
class Finding:
    level: Level
    check: str
    found: str
    fix: str = ""

    def line(self) -> str:
        text = f"{self.level.name:<7} {self.check}: {self.found}"
        return f"{text}; fix: {self.fix}" if self.fix else text


def ok(check: str, found: str) -> Finding:
    return Finding(Level.OK, check, found)


def warn(check: str, found: str, fix: str) -> Finding:
    return Finding(Level.WARN, check, found, fix)


def problem(check: str, found: str, fix: str) -> Finding:
    return Finding(Level.PROBLEM, check, found, fix)
