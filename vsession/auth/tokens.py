"""Random bearer tokens (session cookies, setup links), stored only as hashes.

A copy of the DB then holds nothing that can be replayed as a cookie or a link.
"""

from __future__ import annotations

import hashlib
import re
import secrets

_TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{43}")


def new_token() -> str:
    """256 random bits, URL-safe base64 without padding (43 characters)."""
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """SHA-256 hex; 256-bit tokens need no salt or slow KDF."""
    return hashlib.sha256(token.encode()).hexdigest()


def looks_like_token(text: str) -> bool:
    """Cheap shape check so garbage cookies/links are refused before any DB lookup."""
    return _TOKEN_RE.fullmatch(text) is not None
