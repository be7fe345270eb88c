"""Age X25519 recipients ("age1…"): the one parser, used when settings load and by the
encrypting writer, and the fingerprint the server prints at start-up.

We accept exactly what stock `age -r` can encrypt to: lowercase Bech32 (BIP 173 checksum) with
the human-readable part "age" and a 32-byte X25519 public key that is not a low-order point.
Errors never echo the text: people paste secret keys by mistake, and errors reach logs.
"""

from __future__ import annotations

import hashlib

import bech32
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

PREFIX = "age1"
_HRP = "age"
_IDENTITY_PREFIX = "AGE-SECRET-KEY-"
_FROM = "copy the 'age1…' line that `vsession keys generate` or `age-keygen -y` prints"


def parse_recipient(text: str) -> X25519PublicKey:
    """Parse one recipient; surrounding whitespace is ignored. Raises ValueError, one line."""
    text = text.strip()
    if text.upper().startswith(_IDENTITY_PREFIX):
        raise ValueError(
            "this is an age identity (secret key), not a recipient: remove it from the server, "
            "whose disk must never hold it, and give its 'age1…' public key (`age-keygen -y FILE`)"
        )
    if text == text.upper() and text != text.lower():
        # BIP 173 allows all upper case, but stock age refuses it ("unknown recipient type").
        raise ValueError(f"is in upper case; stock age takes a recipient only in lowercase; {_FROM}")
    if text != text.lower():
        raise ValueError(
            f"mixes upper and lower case, which bech32 forbids; an age recipient is all lowercase; {_FROM}"
        )
    if not text.startswith(PREFIX):
        raise ValueError(f"an age recipient starts with 'age1'; {_FROM}")
    if text.rfind("1") != len(PREFIX) - 1:
        # No '1' in the Bech32 alphabet, so another one means a longer prefix: "age1<name>1…".
        raise ValueError(
            "has a '1' after 'age1', as an age plugin recipient (age1<plugin>1…) has; the server "
            "encrypts to X25519 recipients only"
        )
    if any(c not in bech32.CHARSET for c in text[len(PREFIX) :]):
        raise ValueError(f"has a character bech32 never uses (such as b, i, o or punctuation); {_FROM}")
    hrp, words = bech32.bech32_decode(text)
    if hrp != _HRP or words is None:
        raise ValueError(f"fails its bech32 checksum (a character is wrong, missing or extra); {_FROM}")
    key = bech32.convertbits(words, 5, 8, False)
    if key is None:
        raise ValueError("has non-zero padding bits after its key (not a canonical encoding)")
    if len(key) != 32:
        raise ValueError(f"holds {len(key)} bytes, not the 32 bytes of an X25519 public key")
    public = X25519PublicKey.from_public_bytes(bytes(key))
    try:
        X25519PrivateKey.generate().exchange(public)
    except ValueError:
        # Every sender would derive the same all-zero secret; stock age refuses to wrap to it.
        raise ValueError("is a low-order point, not anyone's X25519 public key") from None
    return public


def recipient_text(key: X25519PublicKey) -> str:
    """The canonical form, exactly as `age-keygen -y` prints it."""
    words = bech32.convertbits(key.public_bytes_raw(), 8, 5, True)
    assert words is not None  # 8-to-5 bit conversion with padding cannot fail
    return bech32.bech32_encode(_HRP, words)


def describe(key: X25519PublicKey) -> str:
    """Short form and fingerprint: the first 16 hex digits of the SHA-256 of the recipient line
    as `age-keygen -y` prints it (newline included), so a practice checks it with
    `age-keygen -y identity.txt | sha256sum`. 64 bits, too many to grind a look-alike key for."""
    text = recipient_text(key)
    digest = hashlib.sha256(f"{text}\n".encode("ascii")).hexdigest()
    return f"{text[:8]}…{text[-4:]} (sha256 {digest[:16]})"


def recording_status(recording: str, breakglass: str) -> str:
    """The start-up line. Call only with settings that loaded (both recipients parsed)."""
    if not recording:
        return "recording: disabled (no recording_recipient)"
    line = f"recording: enabled, recipient {describe(parse_recipient(recording))}"
    if breakglass:
        line += f", break-glass {describe(parse_recipient(breakglass))}"
    return line
