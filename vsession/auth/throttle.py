"""Sign-in throttling. Password and TOTP failures count together per username, known or not,
so the replies never reveal whether an account exists; a per-IP window bounds spraying.

The counter is keyed by an HMAC of the username, never the typed text: people type their password
into the username box, and that must not be stored. The key is a file in the key folder, so a copy
of the DB cannot test guesses against the hashes."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import math
import threading
from collections import Counter
from pathlib import Path

from vsession.auth.context import AuthContext, AuthError
from vsession.keyfile import load_or_create_key
from vsession.store import login_failures
from vsession.store.db import Tx

USERNAME_KEY_FILE = "username-hmac.key"
_keys: dict[Path, bytes] = {}
_loading = threading.Lock()  # first use: one thread creates the file, the others then read it

IP_WINDOW_SECONDS = 15 * 60
# A username's failures are forgotten after a day without one (unless it is locked), so counters
# for sprayed, made-up usernames cannot pile up in the table.
FAILURE_MEMORY_SECONDS = 24 * 3600
LOCKED = "Too many failed attempts. Sign-in is paused for this account; try again later."
SLOW_DOWN = "Too many failed attempts. Please wait {seconds} seconds and try again."
IP_LIMIT = "Too many failed attempts from this network. Please try again later."


class SignInCounts:
    """Since the process started, for the metrics endpoint: failed steps by kind, lockouts, and
    attempts refused unheard by the throttle. Counts only: never a name or an address."""

    def __init__(self) -> None:
        self.failures: Counter[str] = Counter()  # "password", "totp", "recovery", "step_up"
        self.lockouts = 0
        self.throttled: Counter[str] = Counter()  # "address", "locked", "slow_down"


COUNTS = SignInCounts()


def _load_key(path: Path) -> bytes:
    with _loading:
        if path not in _keys:
            _keys[path] = load_or_create_key(path)
        return _keys[path]


async def hidden_name(ctx: AuthContext, username: str) -> str:
    """What stands for a typed username wherever it is stored: a keyed hash (128 bits)."""
    return await _keyed_hash(ctx, username)


async def hidden_address(ctx: AuthContext, ip: str) -> str:
    """What stands for a client's address in the per-address failure counts: a keyed hash, so a
    copied database does not list who tried to sign in from where."""
    return await _keyed_hash(ctx, "address:" + ip)


async def _keyed_hash(ctx: AuthContext, text: str) -> str:
    path = ctx.settings.key_folder / USERNAME_KEY_FILE
    key = _keys.get(path) or await asyncio.to_thread(_load_key, path)
    return "hmac:" + hmac.new(key, text.encode(), hashlib.sha256).hexdigest()[:32]


def delay_after(failures: int) -> float:
    """Growing delay before the next attempt: none for the first typos, then doubling to a minute."""
    return 0.0 if failures < 3 else float(min(2 ** (failures - 3), 60))


async def check(ctx: AuthContext, tx: Tx, username: str, ip: str) -> AuthError | None:
    now = ctx.clock.now()
    address = await hidden_address(ctx, ip)
    if await login_failures.ip_count(tx, address, now - IP_WINDOW_SECONDS) >= ctx.settings.ip_failure_limit:
        COUNTS.throttled["address"] += 1
        return AuthError(429, IP_LIMIT, IP_WINDOW_SECONDS)
    row = await login_failures.for_username(tx, await hidden_name(ctx, username))
    if row is None:
        return None
    if row["locked_until"] > now:
        COUNTS.throttled["locked"] += 1
        return AuthError(429, LOCKED, math.ceil(row["locked_until"] - now))
    if row["locked_until"] == 0:
        wait = row["last_failure"] + delay_after(row["count"]) - now
        if wait > 0:
            COUNTS.throttled["slow_down"] += 1
            return AuthError(429, SLOW_DOWN.format(seconds=math.ceil(wait)), math.ceil(wait))
    return None


async def fail(ctx: AuthContext, tx: Tx, username: str, ip: str) -> bool:
    """Count a failure; True when this one locks the account."""
    now = ctx.clock.now()
    await login_failures.ip_record(tx, await hidden_address(ctx, ip), now, now - IP_WINDOW_SECONDS)
    await login_failures.forget(tx, now - FAILURE_MEMORY_SECONDS, now)
    key = await hidden_name(ctx, username)
    row = await login_failures.for_username(tx, key)
    # A lock that has lifted starts a fresh count.
    count = 1 if row is None or 0 < row["locked_until"] <= now else row["count"] + 1
    locked = count >= ctx.settings.lockout_threshold
    locked_until = now + ctx.settings.lockout_minutes * 60 if locked else 0.0
    await login_failures.record(tx, key, count, now, locked_until)
    return locked


async def succeed(ctx: AuthContext, tx: Tx, username: str) -> None:
    await login_failures.clear(tx, await hidden_name(ctx, username))
