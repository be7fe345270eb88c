"""Authenticated encryption for secrets stored in the DB (TOTP secrets), keyed from a file outside it."""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_NONCE_BYTES = 12
_TAG_BYTES = 16


class SecretBox:
    """AES-256-GCM with a random 96-bit nonce prefixed to each ciphertext.

    `context` (e.g. b"totp:user:42") is bound as associated data, so a ciphertext copied into
    another user's row does not decrypt there. Random nonces are safe far beyond the number of
    secrets this server will ever seal under one key.
    """

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("SecretBox key must be 32 bytes")
        self._aead = AESGCM(key)

    def seal(self, plaintext: bytes, context: bytes) -> bytes:
        nonce = os.urandom(_NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, plaintext, context)

    def open(self, blob: bytes, context: bytes) -> bytes:
        """Decrypt a sealed blob; ValueError if it is truncated, tampered, or for another key/context."""
        if len(blob) < _NONCE_BYTES + _TAG_BYTES:
            raise ValueError("sealed secret is truncated")
        try:
            return self._aead.decrypt(blob[:_NONCE_BYTES], blob[_NONCE_BYTES:], context)
        except InvalidTag:
            raise ValueError(
                "sealed secret failed authentication (wrong key, wrong context or tampered)"
            ) from None
