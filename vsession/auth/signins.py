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
from vsession.store import therapists
from vsession.store.db import Tx
from vsession.store.signins import SignIn

# __Host- makes the browser insist on Secure, Path=/ and no Domain, so no subdomain can plant it.
COOKIE = "__Host-vsession"
# A password-only session may only finish the second factor, and only for a short while.
SECOND_FACTOR_SECONDS = 5 * 60

# Why a sign-in ended, as its pages show it (a WebSocket close reason: at most 123 bytes).
LOGGED_OUT = "You signed out."
DISABLED = "This account was disabled by the practice admin."
TWO_STEP_RESET = "Your two-step sign-in was reset by the practice admin. Please sign in again."
PASSWORD_CHANGED = "Your password was changed. Please sign in again."  # noqa: S105 (a message)
EXPIRED = "Your sign-in has expired. Please sign in again."
IDLE = "You were signed out after {minutes} minutes without activity."
ABSOLUTE = "You were signed out: a sign-in lasts at most {hours} hours."


async def issue(tx: Tx, ctx: AuthContext, therapist_id: int, stage: str, totp_at: float = 0.0) -> str:
    token = new_token()
    await signin_rows.insert(tx, token_hash(token), therapist_id, stage, ctx.clock.now(), totp_at)
    return token


def expiry(ctx: AuthContext, session: SignIn) -> str | None:
    """Why this sign-in has expired by now, or None while it is within its limits."""
    now = ctx.clock.now()
    if session.stage == "second_factor":
        return EXPIRED if now - session.created_at > SECOND_FACTOR_SECONDS else None
    hours, minutes = ctx.settings.absolute_timeout_hours, ctx.settings.idle_timeout_minutes
    if now - session.created_at > hours * 3600:
        return ABSOLUTE.format(hours=hours)
    if now - session.last_seen > minutes * 60:
        return IDLE.format(minutes=minutes)
    return None


def expired(ctx: AuthContext, session: SignIn) -> bool:
    return expiry(ctx, session) is not None


async def end_reason(ctx: AuthContext, tx: Tx, row: SignIn | None, last: SignIn) -> str | None:
    """None while a sign-in is live, else why it ended, in words for its open pages. `row` is its
    row as read now (None once deleted); `last` is the row as read before, whose timestamps still
    tell an expiry after someone else's lookup deleted the row on sight."""
    if row is not None:
        return expiry(ctx, row)
    ended = expiry(ctx, last)
    if ended is not None:
        return ended
    account = await therapists.by_id(tx, last.therapist_id)
    if account is None or account.disabled:
        return DISABLED
    if not account.totp_enrolled:
        return TWO_STEP_RESET
    # What else deletes a full sign-in's row: a password change (every sign-in of the account),
    # or a logout, whose own sockets are closed with LOGGED_OUT before the row goes.
    return PASSWORD_CHANGED


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
