"""Rate limits in bounded memory: a token bucket per connection, so one page cannot flood the
server, and counts of bad client links per link and per address."""

from __future__ import annotations

import time
from collections import OrderedDict

GUESS_WINDOW_SECONDS = 15 * 60
# Bad links per link id (the session in the URL) per address per window: a person with a typo needs
# a handful at most. Links are 256-bit tokens, so this is about load and noise, not guessability.
GUESS_LIMIT = 20
# Bad links per address per window, whatever link they aimed at: a ceiling that a family behind
# one router, or an office behind a proxy, never reaches by accident, and a scanner soon does.
ADDRESS_LIMIT = 200
# Keys each count keeps at most (a few megabytes); past that, the least recently failed go first.
MAX_KEYS = 10_000


class TokenBucket:
    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate
        self.burst = burst
        self._tokens = burst
        self._at = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now
        if self._tokens >= 1:
            self._tokens -= 1
            return True
        return False


class FailureCounter:
    """Failures per key in a window that starts at the key's first failure, for at most `max_keys`
    keys. Memory stays flat however many addresses knock: a key whose window has passed is dropped
    as soon as it is the least recently failed, and past `max_keys` the least recently failed key is
    forgotten (its count restarts; an attacker with that many addresses gains little from it)."""

    def __init__(self, window: float, max_keys: int) -> None:
        self.window = window
        self.max_keys = max_keys
        self._counts: OrderedDict[str, tuple[float, int]] = OrderedDict()  # key -> (start, failures)

    def __len__(self) -> int:
        return len(self._counts)

    def failures(self, key: str, now: float) -> int:
        start, count = self._counts.get(key, (now, 0))
        return count if now - start < self.window else 0

    def retry_after(self, key: str, now: float) -> float:
        start, _ = self._counts.get(key, (now, 0))
        return max(0.0, start + self.window - now)

    def fail(self, key: str, now: float) -> None:
        start, count = self._counts.pop(key, (now, 0))
        if now - start >= self.window:
            start, count = now, 0
        self._counts[key] = (start, count + 1)  # to the end: the most recently failed
        while self._counts:
            oldest, (began, _) = next(iter(self._counts.items()))
            if len(self._counts) <= self.max_keys and now - began < self.window:
                break
            del self._counts[oldest]


class LinkGuesses:
    """Bad client links, counted per (address, link) and per address (vsession/rooms/invites.py)."""

    def __init__(self, max_keys: int = MAX_KEYS) -> None:
        self.per_link = FailureCounter(GUESS_WINDOW_SECONDS, max_keys)
        self.per_address = FailureCounter(GUESS_WINDOW_SECONDS, max_keys)

    @staticmethod
    def _link(ip: str, link: str) -> str:
        return f"{ip} {link}"

    def address_limited(self, ip: str, now: float) -> float | None:
        """Seconds to wait when the address has reached its ceiling, else None."""
        if self.per_address.failures(ip, now) < ADDRESS_LIMIT:
            return None
        return self.per_address.retry_after(ip, now)

    def link_limited(self, ip: str, link: str, now: float) -> float | None:
        """Seconds to wait when this address has tried too many bad tokens for this link, else None."""
        key = self._link(ip, link)
        if self.per_link.failures(key, now) < GUESS_LIMIT:
            return None
        return self.per_link.retry_after(key, now)

    def failed(self, ip: str, link: str, now: float) -> None:
        self.per_link.fail(self._link(ip, link), now)
        self.per_address.fail(ip, now)
