"""Therapist sign-ins (web sessions): a 256-bit cookie token, stored hashed, with idle and absolute limits."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac

from aiohttp import web

from vsession.auth.context import AuthContext
from vsession.auth.tokens import looks_like_token, new_token, token_hash
from vsession.store import signins as signin_rows
from vsession.store.db import Tx
from vsession.store.signins import SignIn

# __Host- makes the browser insist on Secure, Path=/ and no Domain, so no subdomain can plant it.
COOKIE = "__Host-vsession"
# A password-only session may only finish the second factor, and only for a short while.
SECOND_FACTOR_SECONDS = 5 * 60


async def issue(tx: Tx, ctx: AuthContext, therapist_id: int, stage: str, totp_at: float = 0.0) -> str:
    token = new_token()
    await signin_rows.insert(tx, token_hash(token), therapist_id, stage, ctx.clock.now(), totp_at)
    return token


def expired(ctx: AuthContext, session: SignIn) -> bool:
    now = ctx.clock.now()
    if session.stage == "second_factor":
        return now - session.created_at > SECOND_FACTOR_SECONDS
    return (
        now - session.last_seen > ctx.settings.idle_timeout_minutes * 60
        or now - session.created_at > ctx.settings.absolute_timeout_hours * 3600
    )


async def lookup(ctx: AuthContext, token: str | None, touch: bool = True) -> SignIn | None:
    """The live session for a cookie value, or None; an expired row is deleted on sight."""
    if not token or not looks_like_token(token):
        return None
    key = token_hash(token)
    async with ctx.db.transaction() as tx:
        session = await signin_rows.get(tx, key)
        if session is None:
            return None
        if expired(ctx, session):
            await signin_rows.delete(tx, key)
            return None
        if touch:
            await signin_rows.touch(tx, key, ctx.clock.now())
        return dataclasses.replace(session, csrf_token=csrf_token(token))


def csrf_token(token: str) -> str:
    """A sign-in's CSRF token, derived from its cookie instead of stored: only the cookie's holder
    (through a page of ours) can know it, and the database holds neither (only the cookie's hash)."""
    digest = hmac.new(token.encode(), b"vsession csrf", hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def set_cookie(response: web.StreamResponse, token: str) -> None:
    response.set_cookie(COOKIE, token, path="/", secure=True, httponly=True, samesite="Strict")


def clear_cookie(response: web.StreamResponse) -> None:
    response.del_cookie(COOKIE, path="/", secure=True, httponly=True, samesite="Strict")
