"""The chain rule: each hash is HMAC-SHA256(key, previous hash || canonical entry)."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

GENESIS = "0" * 64


def canonical(seq: int, ts: str, actor: str, action: str, obj: str, outcome: str, details: str) -> bytes:
    # Sorted keys and fixed separators: the same entry always serialises to the same bytes.
    entry = {
        "seq": seq,
        "ts": ts,
        "actor": actor,
        "action": action,
        "object": obj,
        "outcome": outcome,
        "details": details,
    }
    return json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def canonical_details(details: dict[str, Any]) -> str:
    return json.dumps(details, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def link(key: bytes, prev_hash: str, entry: bytes) -> str:
    return hmac.new(key, prev_hash.encode() + b"\n" + entry, hashlib.sha256).hexdigest()
