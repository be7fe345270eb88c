"""Single-use recovery codes, shown once at enrolment and stored only as hashes."""

from __future__ import annotations

import hashlib
import secrets

COUNT = 10
# Crockford base32 alphabet: no I, L, O, U, so codes are easy to read back and type.
ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
_GROUPS = 4
_GROUP_LEN = 4  # 16 characters x 5 bits = 80 bits per code
# Crockford decoding: letters that never occur in a code are read as the digits they resemble.
_TYPOS = str.maketrans({"i": "1", "l": "1", "o": "0", "-": None})


def new_codes() -> list[str]:
    """COUNT fresh codes formatted as xxxx-xxxx-xxxx-xxxx."""
    return [
        "-".join("".join(secrets.choice(ALPHABET) for _ in range(_GROUP_LEN)) for _ in range(_GROUPS))
        for _ in range(COUNT)
    ]


def normalise(code: str) -> str:
    """The canonical form of a typed code: lowercase, no whitespace or dashes, Crockford typos fixed."""
    return "".join(code.lower().split()).translate(_TYPOS)


def hash_code(code: str) -> str:
    """SHA-256 hex of the normalised code.

    80 random bits cannot be brute-forced from the hash, so a slow KDF would add cost without
    adding security; a plain hash also lets the caller look a code up by an indexed equality.
    """
    return hashlib.sha256(normalise(code).encode()).hexdigest()
