"""The personal fields of audit entries: the address of someone who is not a therapist (`ip:…`).

The entry keeps the kind of actor ("ip") and a commitment; the address and the commitment's nonce
are sealed with the personal-data key in `audit_personal`, one row per entry, until data retention
purges the row. Entries written before this existed are reduced the same way at the first start,
each vouched for by `chain.reduction` after its link was checked."""

from __future__ import annotations

import hmac
import json
from dataclasses import dataclass
from datetime import datetime

from vsession.audit.chain import GENESIS, canonical, link, reduction
from vsession.auth.secretbox import SecretBox
from vsession.store.db import Database, Tx

ADDRESS_PREFIX = "ip:"
ADDRESS_ACTOR = "ip"


@dataclass(frozen=True)
class Fields:
    nonce: bytes  # empty for an entry reduced after the fact: it has no commitment
    values: dict[str, str]


def split(actor: str) -> tuple[str, dict[str, str]]:
    """The actor as the chain stores it, and what moves to the side table."""
    if actor.startswith(ADDRESS_PREFIX):
        return ADDRESS_ACTOR, {"actor": actor}
    return actor, {}


def _context(seq: int) -> bytes:
    # Bound to its entry: a sealed row copied to another sequence number does not open.
    return f"audit:{seq}".encode()


def seal(box: SecretBox, seq: int, fields: Fields) -> bytes:
    text = json.dumps({"nonce": fields.nonce.hex(), "values": fields.values}, sort_keys=True)
    return box.seal(text.encode(), _context(seq))


def unseal(box: SecretBox, seq: int, sealed: bytes) -> Fields:
    """ValueError if the row was altered, moved or sealed with another key."""
    data = json.loads(box.open(sealed, _context(seq)))
    return Fields(bytes.fromhex(data["nonce"]), data["values"])


async def insert(tx: Tx, seq: int, at: float, sealed: bytes) -> None:
    await tx.execute("INSERT INTO audit_personal (seq, at, sealed) VALUES (?, ?, ?)", (seq, at, sealed))


async def purge(tx: Tx, before: float) -> int:
    """Data retention: the addresses go, the entries and the chain stay."""
    return await tx.execute("DELETE FROM audit_personal WHERE at < ?", (before,))


async def reduce_legacy(db: Database, key: bytes, box: SecretBox) -> int:
    """Move the addresses out of entries written before commitments existed. An entry whose link does
    not verify is left as it is, for `verify` to report: vouching for it would hide the edit."""
    reduced = 0
    async with db.transaction() as tx:
        rows = await tx.fetchall(
            "SELECT * FROM audit_log WHERE personal = '' AND actor LIKE 'ip:%' ORDER BY seq"
        )
        for row in rows:
            before = await tx.fetchone("SELECT hash FROM audit_log WHERE seq = ?", (row["seq"] - 1,))
            prev = before["hash"] if before else GENESIS
            start = (row["seq"], row["ts"])
            rest = (row["action"], row["object"], row["outcome"], row["details"])
            if not hmac.compare_digest(link(key, prev, canonical(*start, row["actor"], *rest)), row["hash"]):
                continue
            mark = reduction(key, prev, row["hash"], canonical(*start, ADDRESS_ACTOR, *rest))
            await tx.execute(
                "UPDATE audit_log SET actor = ?, personal = ? WHERE seq = ?",
                (ADDRESS_ACTOR, mark, row["seq"]),
            )
            at = datetime.fromisoformat(row["ts"]).timestamp()
            sealed = seal(box, row["seq"], Fields(b"", {"actor": row["actor"]}))
            await insert(tx, row["seq"], at, sealed)
            reduced += 1
    return reduced
