"""Password policy and storage.

Policy (NIST SP 800-63B §5.1.1): at least 12 characters, any Unicode, long passphrases welcome,
no composition rules, a small block list of very common choices. Passwords are NFKC-normalised
so the same text typed on different keyboards/platforms hashes the same, and are never
truncated. The only upper bound is a 1024-character sanity cap.

Storage: scrypt from `cryptography` with n=2**15, r=8, p=1, a 16-byte random salt and a 32-byte
output. scrypt needs 128 * r * n bytes = 32 MiB of memory per guess, which makes GPU/ASIC
cracking of a stolen DB expensive, while one login costs about 0.1 s of CPU — acceptable
for a handful of therapists. These are the parameters OWASP's Password Storage Cheat Sheet
lists for scrypt. Each stored hash carries its own parameters
(`scrypt$<log2 n>$<r>$<p>$<salt b64>$<hash b64>`) so they can be raised later without
breaking existing accounts.

Hashing blocks for ~0.1 s: async callers should run it in an executor.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hmac
import os
import secrets
import unicodedata

from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

MIN_LENGTH = 12
MAX_LENGTH = 1024

_LOG2_N = 15
_R = 8
_P = 1
_SALT_BYTES = 16
_HASH_BYTES = 32
# A tampered stored string must not make verify allocate gigabytes.
_MAX_MEMORY = 256 * 1024 * 1024

# Very common passwords and phrases that pass the length rule, lowercase (compared with casefold()).
_COMMON = frozenset(
    {
        "000000000000",
        "111111111111",
        "123123123123",
        "121212121212",
        "123412341234",
        "123456123456",
        "123456654321",
        "123456789012",
        "1234567890123",
        "12345678901234",
        "123456789123",
        "1234567891011",
        "123456789abc",
        "abc123456789",
        "1234567890qwerty",
        "1234qwerasdf",
        "1q2w3e4r5t6y",
        "1q2w3e4r5t6y7u8i",
        "q1w2e3r4t5y6",
        "a1b2c3d4e5f6",
        "1qaz2wsx3edc",
        "1qaz2wsx3edc4rfv",
        "zaq12wsxcde3",
        "zaq1zaq1zaq1",
        "qazwsxedcrfv",
        "qazwsxedcrfvtgb",
        "qwertyuiop12",
        "qwertyuiop123",
        "qwertyuiopasdf",
        "qwertyuiopasdfghjkl",
        "qwertyuiopasdfghjklzxcvbnm",
        "qwerty123456",
        "123456qwerty",
        "qwertyqwerty",
        "asdfghjkl123",
        "asdfasdfasdf",
        "zxcvbnm12345",
        "abcdefghijkl",
        "abcdefghijklm",
        "abc123abc123",
        "abcd1234abcd",
        "abcdefg12345",
        "password1234",
        "password12345",
        "password123456",
        "password123!",
        "password1234!",
        "passwordpassword",
        "passw0rd1234",
        "p@ssw0rd1234",
        "p@ssword1234",
        "mypassword123",
        "mypassword1234",
        "secretpassword",
        "supersecret123",
        "changeme1234",
        "changeme123!",
        "letmein12345",
        "letmeinletmein",
        "welcome12345",
        "welcome123456",
        "iloveyou1234",
        "iloveyou123456",
        "iloveyouiloveyou",
        "trustno1trustno1",
        "administrator",
        "administrator1",
        "admin1234567",
        "adminadmin123",
        "helloworld123",
        "helloworld1234",
        "hello1234567",
        "football1234",
        "baseball1234",
        "basketball12",
        "sunshine1234",
        "princess1234",
        "starwars1234",
        "monkey123456",
        "dragon123456",
        "whatever1234",
        "correcthorsebatterystaple",
        "correct horse battery staple",
        "thequickbrownfox",
        "the quick brown fox jumps over the lazy dog",
        "thequickbrownfoxjumpsoverthelazydog",
        "therapist123",
        "therapist1234",
        "therapy12345",
        "psychotherapy",
        "psychotherapist",
        "vsession1234",
    }
)


def _normalise(text: str) -> str:
    return unicodedata.normalize("NFKC", text)


def password_problem(password: str, username: str = "") -> str | None:
    """Return a sentence explaining why `password` is unacceptable, or None if it is fine."""
    # Check the raw length first so a huge input is refused before normalising it.
    if len(password) > MAX_LENGTH or len(normalised := _normalise(password)) > MAX_LENGTH:
        return f"Password is too long: use at most {MAX_LENGTH} characters."
    if len(normalised) < MIN_LENGTH:
        return f"Password is too short: use at least {MIN_LENGTH} characters; a few words work well."
    if len(set(normalised)) == 1:
        return "Password must not be one character repeated."
    if username and normalised.casefold() == _normalise(username).casefold():
        return "Password must not be the same as the username."
    if normalised.casefold() in _COMMON:
        return "Password is too common: choose something less predictable."
    return None


def _scrypt(log2_n: int, r: int, p: int, salt: bytes, length: int) -> Scrypt:
    return Scrypt(salt=salt, length=length, n=1 << log2_n, r=r, p=p)


def hash_password(password: str) -> str:
    """Hash with a fresh salt and the current parameters, in the self-describing stored format."""
    salt = os.urandom(_SALT_BYTES)
    digest = _scrypt(_LOG2_N, _R, _P, salt, _HASH_BYTES).derive(_normalise(password).encode())
    b64 = base64.b64encode
    return f"scrypt${_LOG2_N}${_R}${_P}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    """Check `password` against a stored hash, using the parameters recorded in it.

    A malformed or implausible stored string yields False rather than an exception.
    """
    try:
        scheme, log2_n_text, r_text, p_text, salt_b64, digest_b64 = stored.split("$")
        log2_n, r, p = int(log2_n_text), int(r_text), int(p_text)
        salt = base64.b64decode(salt_b64, validate=True)
        expected = base64.b64decode(digest_b64, validate=True)
    except (ValueError, binascii.Error):
        return False
    if (
        scheme != "scrypt"
        or not 1 <= log2_n <= 24
        or not 1 <= r <= 64
        or not 1 <= p <= 16
        or 128 * r * (1 << log2_n) > _MAX_MEMORY
        or len(salt) < _SALT_BYTES
        or len(expected) < 16
    ):
        return False
    try:
        actual = _scrypt(log2_n, r, p, salt, len(expected)).derive(_normalise(password).encode())
    except ValueError:
        return False
    return hmac.compare_digest(actual, expected)


@functools.cache
def _dummy_hash() -> str:
    # Computed on first use, not at import, so importing the module stays cheap.
    return hash_password(secrets.token_urlsafe(32))


def dummy_verify(password: str) -> bool:
    """Spend the same time as a real verification, for usernames that do not exist.

    Without this, a fast "no such user" answer would reveal which usernames exist.
    Always returns False.
    """
    verify_password(password, _dummy_hash())
    return False
