"""The chain rule: each hash is HMAC-SHA256(key, previous hash || canonical entry).

Personal fields (an address) are not in the entry itself: the entry carries a commitment to them,
HMAC-SHA256 under a random nonce that is sealed with them in a side table. Purging that row leaves a
commitment nobody can open or test guesses against, and the chain still verifies."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

GENESIS = "0" * 64
COMMITTED = "c:"  # the entry commits to personal fields kept in audit_personal
REDUCED = "r:"  # an entry written before commitments, its address since moved out (see reduction)


def canonical(
    seq: int, ts: str, actor: str, action: str, obj: str, outcome: str, details: str, personal: str = ""
) -> bytes:
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
    if personal:
        # Only entries with personal fields have the key, so every older entry serialises as before.
        entry["personal"] = personal
    return json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def canonical_details(details: dict[str, Any]) -> str:
    return json.dumps(details, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def link(key: bytes, prev_hash: str, entry: bytes) -> str:
    return hmac.new(key, prev_hash.encode() + b"\n" + entry, hashlib.sha256).hexdigest()


def commitment(nonce: bytes, fields: dict[str, str]) -> str:
    return COMMITTED + hmac.new(nonce, canonical_details(fields).encode(), hashlib.sha256).hexdigest()


def reduction(key: bytes, prev_hash: str, entry_hash: str, reduced: bytes) -> str:
    """For an entry chained with its address in it (before commitments existed): the key holder's
    word that the entry, with the address moved out, is the one that hashed to `entry_hash` at this
    place. The link itself cannot be recomputed once the address is purged; this can, and only with
    the key, so it is as hard to forge as the chain."""
    message = b"reduced\n" + prev_hash.encode() + b"\n" + entry_hash.encode() + b"\n" + reduced
    return REDUCED + hmac.new(key, message, hashlib.sha256).hexdigest()
