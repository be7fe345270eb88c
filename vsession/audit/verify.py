"""Checking the chain, and the checkpoints that catch a truncated tail."""

from __future__ import annotations

import hmac
import re
from dataclasses import dataclass

from vsession.audit.chain import GENESIS, canonical, link
from vsession.store.db import Database


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


async def verify(db: Database, key: bytes, checkpoint: Checkpoint | None = None) -> VerifyResult:
    rows = await db.fetchall("SELECT * FROM audit_log ORDER BY seq")
    prev = GENESIS
    last: Checkpoint | None = None
    for expected, row in enumerate(rows, start=1):
        if row["seq"] != expected:
            return VerifyResult(False, expected - 1, last, expected, f"entry {expected} is missing")
        entry = canonical(
            row["seq"], row["ts"], row["actor"], row["action"], row["object"], row["outcome"], row["details"]
        )
        if not hmac.compare_digest(link(key, prev, entry), row["hash"]):
            return VerifyResult(
                False, expected - 1, last, expected, f"entry {expected} does not match its hash"
            )
        prev = row["hash"]
        last = Checkpoint(row["seq"], row["hash"])
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
