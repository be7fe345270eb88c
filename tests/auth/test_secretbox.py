from __future__ import annotations

import os

import pytest

from vsession.auth.secretbox import SecretBox

KEY = bytes(range(32))
SECRET = b"JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


def test_round_trip():
    box = SecretBox(KEY)
    blob = box.seal(SECRET, b"totp:1")
    assert SECRET not in blob
    assert box.open(blob, b"totp:1") == SECRET


def test_fresh_nonce_each_time():
    box = SecretBox(KEY)
    assert box.seal(SECRET, b"totp:1") != box.seal(SECRET, b"totp:1")


def test_wrong_context_fails():
    box = SecretBox(KEY)
    blob = box.seal(SECRET, b"totp:1")
    with pytest.raises(ValueError):
        box.open(blob, b"totp:2")


@pytest.mark.parametrize("index", [0, 11, 12, 20, -1])
def test_tampered_fails(index):
    box = SecretBox(KEY)
    blob = bytearray(box.seal(SECRET, b"totp:1"))
    blob[index] ^= 0x01
    with pytest.raises(ValueError):
        box.open(bytes(blob), b"totp:1")


@pytest.mark.parametrize("blob", [b"", b"x" * 27])
def test_truncated_fails(blob):
    with pytest.raises(ValueError):
        SecretBox(KEY).open(blob, b"totp:1")


def test_wrong_key_fails():
    blob = SecretBox(KEY).seal(SECRET, b"totp:1")
    with pytest.raises(ValueError):
        SecretBox(os.urandom(32)).open(blob, b"totp:1")


@pytest.mark.parametrize("size", [0, 16, 24, 31, 33])
def test_key_must_be_32_bytes(size):
    with pytest.raises(ValueError):
        SecretBox(bytes(size))
