"""The recorder's gate. The recorder may write a packet only while the gate is open for the epoch
its segment began in. Only vsession.consent.machine opens it (grep for `_open(`); anyone may close it."""

from __future__ import annotations

import time


class Gate:
    def __init__(self) -> None:
        self._is_open = False
        self.epoch = 0
        self.closed_at = 0.0  # wall clock of the last closing, for the record of how fast it stopped

    def allows(self, epoch: int) -> bool:
        """Checked by the recorder before every packet it writes."""
        return self._is_open and self.epoch == epoch

    @property
    def is_open(self) -> bool:
        return self._is_open

    def close(self) -> None:
        if self._is_open:
            self.closed_at = time.time()
        self._is_open = False

    def _open(self) -> int:
        """A new epoch: a segment from an earlier opening can never write again."""
        self.epoch += 1
        self._is_open = True
        return self.epoch
