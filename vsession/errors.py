"""The one kind of domain refusal: an HTTP status and the sentence the person should see."""

from __future__ import annotations


class Refusal(Exception):
    def __init__(self, status: int, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.retry_after = retry_after
