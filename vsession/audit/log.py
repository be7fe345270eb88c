"""Writing audit entries. Entries are written inside the caller's transaction, so an
action and its audit entry commit or fail together."""

from __future__ import annotations

from typing import Any

from vsession.audit.chain import GENESIS, canonical, canonical_details, link
from vsession.clock import Clock, iso_utc
from vsession.store.db import Database, Tx

# Audit details are readable by anyone with the DB; these must never be in them.
FORBIDDEN_DETAIL_KEYS = ("password", "token", "secret", "code", "cookie", "key")


class AuditLog:
    def __init__(self, key: bytes, clock: Clock) -> None:
        self._key = key
        self._clock = clock

    async def append(
        self,
        tx: Tx,
        *,
        actor: str,
        action: str,
        obj: str = "",
        outcome: str = "ok",
        details: dict[str, Any] | None = None,
    ) -> int:
        details = details or {}
        for name in details:
            if any(word in name.lower() for word in FORBIDDEN_DETAIL_KEYS):
                raise ValueError(f"audit details must not carry secrets (key {name!r})")
        last = await tx.fetchone("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
        seq = last["seq"] + 1 if last else 1
        prev = last["hash"] if last else GENESIS
        ts = iso_utc(self._clock.now())
        text = canonical_details(details)
        digest = link(self._key, prev, canonical(seq, ts, actor, action, obj, outcome, text))
        await tx.execute(
            "INSERT INTO audit_log (seq, ts, actor, action, object, outcome, details, hash)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (seq, ts, actor, action, obj, outcome, text, digest),
        )
        return seq

    async def record(self, db: Database, **entry: Any) -> int:
        """Append in a transaction of its own, for events with no other write."""
        async with db.transaction() as tx:
            return await self.append(tx, **entry)
