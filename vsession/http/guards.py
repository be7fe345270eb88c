"""Checks at the door of every therapist handler: a live session of the right stage, and the
per-session CSRF token on anything that changes state."""

from __future__ import annotations

import hmac

from aiohttp import web

from vsession.appkeys import AUTH
from vsession.auth import signins
from vsession.http.csrf import SAFE_METHODS
from vsession.http.json_body import json_error
from vsession.store.signins import SignIn

SIGN_IN = "Please sign in."


async def session_of(request: web.Request, stage: str = "full") -> SignIn:
    session = await signins.lookup(request.app[AUTH], request.cookies.get(signins.COOKIE))
    if session is None or session.stage != stage:
        raise json_error(401, SIGN_IN)
    if request.method not in SAFE_METHODS:
        sent = request.headers.get("X-CSRF-Token", "")
        # An empty token means a SignIn that did not come from lookup(): refuse, never compare.
        if not session.csrf_token or not hmac.compare_digest(sent.encode(), session.csrf_token.encode()):
            raise json_error(
                403, "This request is missing its security token. Reload the page and try again."
            )
    return session


async def optional_session(request: web.Request, stage: str = "full") -> SignIn | None:
    session = await signins.lookup(request.app[AUTH], request.cookies.get(signins.COOKIE), touch=False)
    return session if session is not None and session.stage == stage else None
