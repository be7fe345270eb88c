"""Ephemeral TURN credentials (the TURN REST scheme coturn checks with `use-auth-secret`).

Each admitted participant gets its own username and password, valid for a limited time; the shared
secret stays on the server, so a page can never mint a credential of its own.
"""

from __future__ import annotations

import base64
import hashlib
import hmac


def credential(secret: str, name: str, expires_at: int) -> tuple[str, str]:
    """(username, password): username "<expiry>:<name>" (coturn refuses it after `expires_at`, a Unix
    time), password base64(HMAC-SHA1(secret, username))."""
    username = f"{expires_at}:{name}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode("ascii")
