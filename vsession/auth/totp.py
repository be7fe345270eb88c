"""TOTP second factor (RFC 6238): SHA-1, 6 digits, 30-second steps, as authenticator apps expect."""

from __future__ import annotations

import hashlib
import hmac
from typing import Literal

import pyotp
import segno

STEP = 30
DIGITS = 6


def new_secret() -> str:
    """A fresh base32 secret: 32 characters = 160 bits, the HMAC-SHA-1 key size RFC 4226 recommends."""
    return pyotp.random_base32()


def code_at(
    secret_b32: str, step: int, digits: int = DIGITS, digest: Literal["sha1", "sha256", "sha512"] = "sha1"
) -> str:
    """HOTP(secret, step): the code for one time step (RFC 6238 §4)."""
    return pyotp.HOTP(secret_b32, digits=digits, digest=getattr(hashlib, digest)).at(step)


def step_of(ts: float) -> int:
    """The RFC 6238 time step containing Unix time `ts` (T0 = 0)."""
    return int(ts // STEP)


def match_step(secret_b32: str, code: str, now: float, last_step: int) -> int | None:
    """Return the time step `code` belongs to, or None if it must be refused.

    Only the current and the previous step are tried (RFC 6238 §5.2 allows one step of delay
    for clock drift and typing time). RFC 6238 §5.2 / NIST SP 800-63B §5.1.4.2: a code is
    accepted once, so only a step strictly after `last_step` (the last step this user
    successfully used; pass -1 if none) can match. That also refuses a code older than the
    last one used. The caller must store the returned step in the same DB transaction as
    the check, so two concurrent logins with one code cannot both succeed.
    """
    code = "".join(code.split())
    if len(code) != DIGITS or not code.isascii() or not code.isdigit():
        return None
    current = step_of(now)
    for step in (current, current - 1):
        if step > last_step and step >= 0 and hmac.compare_digest(code_at(secret_b32, step), code):
            return step
    return None


def provisioning_uri(secret_b32: str, username: str, issuer: str = "vsession") -> str:
    """The otpauth:// URI authenticator apps import from the enrolment QR code."""
    return pyotp.TOTP(secret_b32).provisioning_uri(name=username, issuer_name=issuer)


def qr_svg_data_uri(uri: str) -> str:
    """Render `uri` as a QR code SVG data URI, server-side, so no third party sees the secret."""
    # make_qr: never a Micro QR symbol, which authenticator apps cannot scan.
    return segno.make_qr(uri, error="m").svg_data_uri(scale=5)
