"""Checking the chain, and the checkpoints that catch a truncated tail."""

from __future__ import annotations

import hmac
import re
from dataclasses import dataclass

from vsession.audit.chain import COMMITTED, GENESIS, REDUCED, canonical, commitment, link, reduction
from vsession.audit.personal import unseal
from vsession.auth.secretbox import SecretBox
from vsession.store.db import Database, Row


@dataclass(frozen=True)
class Checkpoint:
    seq: int
    hash: str

    def __str__(self) -> str:
        return f"{self.seq}:{self.hash}"

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        match = re.fullmatch(r"\s*(\d+)[:\s]\s*([0-9a-f]{64})\s*", text)
        if not match:
            raise ValueError("a checkpoint looks like SEQ:HASH (as printed by `vsession audit checkpoint`)")
        return cls(int(match[1]), match[2])


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    entries: int
    head: Checkpoint | None
    first_bad: int | None = None
    reason: str = ""


async def head(db: Database) -> Checkpoint | None:
    row = await db.fetchone("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
    return Checkpoint(row["seq"], row["hash"]) if row else None


async def verify(
    db: Database, key: bytes, checkpoint: Checkpoint | None = None, personal_box: SecretBox | None = None
) -> VerifyResult:
    """With the personal-data key, also check that each address still kept belongs to its entry."""
    rows = await db.fetchall("SELECT * FROM audit_log ORDER BY seq")
    kept: dict[int, bytes] = {}
    if personal_box is not None:
        kept = {r["seq"]: r["sealed"] for r in await db.fetchall("SELECT seq, sealed FROM audit_personal")}
    prev = GENESIS
    last: Checkpoint | None = None
    for expected, row in enumerate(rows, start=1):
        if row["seq"] != expected:
            return VerifyResult(False, expected - 1, last, expected, f"entry {expected} is missing")
        problem = _problem(key, prev, row)
        sealed = kept.pop(row["seq"], None)
        if problem is None and personal_box is not None and sealed is not None:
            problem = _personal_problem(key, prev, row, personal_box, sealed)
        if problem is not None:
            return VerifyResult(False, expected - 1, last, expected, f"entry {expected} {problem}")
        prev = row["hash"]
        last = Checkpoint(row["seq"], row["hash"])
    if kept:
        stray = min(kept)
        return VerifyResult(
            False, len(rows), last, stray, f"personal fields kept for a missing entry {stray}"
        )
    if checkpoint is not None:
        count = len(rows)
        if checkpoint.seq > count:
            return VerifyResult(
                False,
                count,
                last,
                count + 1,
                f"log ends at {count} but the checkpoint is at {checkpoint.seq}",
            )
        if checkpoint.seq > 0 and rows[checkpoint.seq - 1]["hash"] != checkpoint.hash:
            return VerifyResult(
                False, count, last, checkpoint.seq, f"entry {checkpoint.seq} differs from the checkpoint"
            )
    return VerifyResult(True, len(rows), last)


def _entry(row: Row, actor: str, personal: str = "") -> bytes:
    return canonical(
        row["seq"], row["ts"], actor, row["action"], row["object"], row["outcome"], row["details"], personal
    )


def _problem(key: bytes, prev: str, row: Row) -> str | None:
    personal = row["personal"]
    if personal.startswith(REDUCED):
        vouched = reduction(key, prev, row["hash"], _entry(row, row["actor"]))
        ok = hmac.compare_digest(vouched, personal)
    else:
        ok = hmac.compare_digest(link(key, prev, _entry(row, row["actor"], personal)), row["hash"])
    return None if ok else "does not match its hash"


def _personal_problem(key: bytes, prev: str, row: Row, box: SecretBox, sealed: bytes) -> str | None:
    try:
        fields = unseal(box, row["seq"], sealed)
    except ValueError:
        return "has personal fields that do not open with this key"
    personal = row["personal"]
    if personal.startswith(COMMITTED):
        ok = hmac.compare_digest(commitment(fields.nonce, fields.values), personal)
    elif personal.startswith(REDUCED):
        original = _entry(row, fields.values.get("actor", ""))
        ok = hmac.compare_digest(link(key, prev, original), row["hash"])
    else:
        ok = False
    return None if ok else "has personal fields that are not the ones it was written with"
