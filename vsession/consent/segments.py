"""Where the consent machine and a recorder meet: the machine decides, the recorder writes.

The machine plans a segment and asks for it synchronously (`Recorder.prepare`), so nothing can
change between its decision and the gate opening; the slow parts (the DB row, the audit entry,
the file) come after, as awaits of the segment, which writes only while the gate allows its epoch."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from vsession.consent.gate import Gate


@dataclass(frozen=True)
class Plan:
    session_id: str
    request_id: str
    text_sha256: str
    number: int  # the segment's number within the request's call
    epoch: int  # the gate epoch it may write in
    participants: tuple[str, ...]


class Segment(Protocol):
    async def begin(self) -> None:
        """Record the start (row and audit entry), open the file, and write while the gate allows
        the epoch. Raises if it cannot; the machine then fails closed and finishes it."""
        ...

    async def finish(self, reason: str) -> None:
        """Stop writing, close the file, and record how it ended. Safe whether or not begin ran."""
        ...


class Recorder(Protocol):
    def prepare(
        self,
        plan: Plan,
        gate: Gate,
        on_writing: Callable[[bool], Awaitable[None]],
        on_error: Callable[[str], Awaitable[None]],
    ) -> Segment:
        """The segment's parts, without awaiting (no I/O); raise if it cannot be made."""
        ...

    async def failed(self, plan: Plan, error: str) -> None:
        """Record (row and audit entry) a segment that could not start."""
        ...
