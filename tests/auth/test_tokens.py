from __future__ import annotations

import hashlib

import pytest

from vsession.auth.tokens import looks_like_token, new_token, token_hash


def test_new_token_shape():
    token = new_token()
    assert len(token) == 43
    assert looks_like_token(token)
    assert new_token() != token


def test_token_hash_is_sha256_hex():
    token = new_token()
    assert token_hash(token) == hashlib.sha256(token.encode()).hexdigest()
    assert token_hash(token) != token_hash(new_token())


@pytest.mark.parametrize(
    "text",
    ["", "a" * 42, "a" * 44, "a" * 42 + "=", "a" * 42 + "+", "a" * 42 + "/", "a" * 42 + "\n", "é" * 43],
)
def test_looks_like_token_rejects_garbage(text):
    assert not looks_like_token(text)


def test_looks_like_token_accepts_urlsafe_alphabet():
    assert looks_like_token("A-z_0" + "9" * 38)
