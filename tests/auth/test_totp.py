from __future__ import annotations

import base64

import pyotp
import pytest
from hypothesis import given
from hypothesis import strategies as st

from vsession.auth.totp import (
    STEP,
    code_at,
    match_step,
    new_secret,
    provisioning_uri,
    qr_svg_data_uri,
    step_of,
)

RFC_SECRET = base64.b32encode(b"12345678901234567890").decode()
SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
NOW = 1_800_000_015.0  # mid-step, so "previous step" is unambiguous
CURRENT = step_of(NOW)


# RFC 6238 Appendix B, SHA-1 column.
@pytest.mark.parametrize(
    ("ts", "expected"),
    [
        (59, "94287082"),
        (1111111109, "07081804"),
        (1111111111, "14050471"),
        (1234567890, "89005924"),
        (2000000000, "69279037"),
        (20000000000, "65353130"),
    ],
)
def test_rfc6238_appendix_b_sha1(ts, expected):
    assert code_at(RFC_SECRET, step_of(ts), digits=8) == expected


def test_step_of():
    assert step_of(0) == 0
    assert step_of(29.999) == 0
    assert step_of(30) == 1
    assert STEP == 30


def test_new_secret_is_160_bits_and_usable():
    secret = new_secret()
    assert len(secret) == 32
    assert len(base64.b32decode(secret)) == 20
    assert new_secret() != secret
    assert code_at(secret, 1) == pyotp.TOTP(secret).at(STEP)


def test_code_at_matches_pyotp_totp_for_six_digits():
    assert code_at(SECRET, CURRENT) == pyotp.TOTP(SECRET).at(NOW)


def test_current_step_accepted():
    assert match_step(SECRET, code_at(SECRET, CURRENT), NOW, -1) == CURRENT


def test_previous_step_accepted():
    assert match_step(SECRET, code_at(SECRET, CURRENT - 1), NOW, -1) == CURRENT - 1


def test_spaces_are_ignored():
    code = code_at(SECRET, CURRENT)
    assert match_step(SECRET, f" {code[:3]} {code[3:]} ", NOW, -1) == CURRENT


def test_two_steps_old_refused():
    assert match_step(SECRET, code_at(SECRET, CURRENT - 2), NOW, -1) is None


def test_future_step_refused():
    assert match_step(SECRET, code_at(SECRET, CURRENT + 1), NOW, -1) is None


def test_replay_of_same_step_refused():
    code = code_at(SECRET, CURRENT)
    matched = match_step(SECRET, code, NOW, -1)
    assert matched == CURRENT
    assert match_step(SECRET, code, NOW, matched) is None
    assert match_step(SECRET, code, NOW + 10, matched) is None


def test_code_older_than_last_used_refused():
    # The current code was used; the previous step's code, still in the window, now fails.
    assert match_step(SECRET, code_at(SECRET, CURRENT - 1), NOW, CURRENT) is None


def test_previous_step_code_still_usable_after_an_older_one():
    assert match_step(SECRET, code_at(SECRET, CURRENT - 1), NOW, CURRENT - 2) == CURRENT - 1


@pytest.mark.parametrize(
    "code",
    ["", "12345", "1234567", "12a456", "１２３４５６", "123-456", "-12345", "+12345", "١٢٣٤٥٦", "12345\x00"],
)
def test_malformed_codes_refused(code):
    assert match_step(SECRET, code, NOW, -1) is None


@given(st.text(max_size=20))
def test_arbitrary_text_never_raises(text):
    step = match_step(SECRET, text, NOW, -1)
    assert step is None or "".join(text.split()) == code_at(SECRET, step)


def test_provisioning_uri():
    uri = provisioning_uri(SECRET, "anna")
    assert uri.startswith("otpauth://totp/vsession:anna?")
    assert f"secret={SECRET}" in uri
    assert "issuer=vsession" in uri


def test_qr_svg_data_uri():
    data_uri = qr_svg_data_uri(provisioning_uri(SECRET, "anna"))
    assert data_uri.startswith("data:image/svg+xml")
    assert "svg" in data_uri
