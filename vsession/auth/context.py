"""What the sign-in code needs, bundled once at start-up."""

from __future__ import annotations

import asyncio
import unicodedata
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from vsession.audit import AuditLog
from vsession.auth.secretbox import SecretBox
from vsession.clock import Clock
from vsession.config import Settings
from vsession.errors import Refusal
from vsession.store import Database


class AuthError(Refusal):
    """A refusal from sign-in, enrolment or step-up."""


@dataclass
class AuthContext:
    settings: Settings
    db: Database
    audit: AuditLog
    clock: Clock
    box: SecretBox
    _locks: dict[str, asyncio.Lock] = field(default_factory=dict)

    @asynccontextmanager
    async def account_lock(self, username: str) -> AsyncIterator[None]:
        """Serialise attempts on one account: the throttle check, the slow password check and the
        failure count must not interleave, or parallel guesses would slip past the lockout."""
        lock = self._locks.setdefault(username, asyncio.Lock())
        try:
            async with lock:
                yield
        finally:
            if not lock.locked() and not getattr(lock, "_waiters", None):
                self._locks.pop(username, None)


def normalise_username(username: str) -> str:
    return unicodedata.normalize("NFKC", username).strip().casefold()


def totp_context(therapist_id: int) -> bytes:
    """Associated data binding an encrypted TOTP secret to its account row."""
    return f"totp:{therapist_id}".encode()
