"""Writing audit entries. Entries are written inside the caller's transaction, so an
action and its audit entry commit or fail together."""

from __future__ import annotations

import secrets
from typing import Any

from vsession.audit import personal
from vsession.audit.chain import GENESIS, canonical, canonical_details, commitment, link
from vsession.auth.secretbox import SecretBox
from vsession.clock import Clock, iso_utc
from vsession.store.db import Database, Tx

# Audit details are readable by anyone with the DB; these must never be in them.
FORBIDDEN_DETAIL_KEYS = ("password", "token", "secret", "code", "cookie", "key")


class AuditLog:
    def __init__(self, key: bytes, clock: Clock, personal_box: SecretBox | None = None) -> None:
        self._key = key
        self._clock = clock
        self._box = personal_box

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
        actor, values = personal.split(actor)
        if values and self._box is None:
            raise ValueError(
                "this audit log has no key to seal personal fields; they are never stored in clear"
            )
        last = await tx.fetchone("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
        seq = last["seq"] + 1 if last else 1
        prev = last["hash"] if last else GENESIS
        now = self._clock.now()
        ts = iso_utc(now)
        text = canonical_details(details)
        fields = personal.Fields(secrets.token_bytes(32), values)
        committed = commitment(fields.nonce, values) if values else ""
        digest = link(self._key, prev, canonical(seq, ts, actor, action, obj, outcome, text, committed))
        await tx.execute(
            "INSERT INTO audit_log (seq, ts, actor, action, object, outcome, details, hash, personal)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (seq, ts, actor, action, obj, outcome, text, digest, committed),
        )
        if values:
            assert self._box is not None
            await personal.insert(tx, seq, now, personal.seal(self._box, seq, fields))
        return seq

    async def record(self, db: Database, **entry: Any) -> int:
        """Append in a transaction of its own, for events with no other write."""
        async with db.transaction() as tx:
            return await self.append(tx, **entry)
