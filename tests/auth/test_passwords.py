from __future__ import annotations

import base64
import unicodedata

import pytest
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from vsession.auth import passwords
from vsession.auth.passwords import (
    MAX_LENGTH,
    MIN_LENGTH,
    dummy_verify,
    hash_password,
    password_problem,
    verify_password,
)

GOOD = "river lantern autumn piano"


def test_good_passphrase_accepted():
    assert password_problem(GOOD, "anna") is None


def test_short_refused():
    assert password_problem("abcdefghij1") is not None  # 11 characters
    assert password_problem("abcdefgh1jk2") is None  # 12 characters


def test_length_counts_code_points_after_nfkc():
    # 12 code points, 24+ bytes in UTF-8: accepted.
    assert password_problem("ÄÖÜäöüßéèêëç") is None
    # "ﬁ" (U+FB01) is one code point that NFKC turns into "fi": 6 ligatures -> 12 characters.
    assert password_problem("ﬁ" * 5 + "ﬂ") is None
    # 11 code points but 22 bytes: still too short.
    assert password_problem("é" * 11) is not None


def test_common_refused_case_insensitively():
    assert password_problem("Password1234") is not None
    assert password_problem("CorrectHorseBatteryStaple") is not None


def test_common_list_entries_are_long_and_lowercase():
    assert 60 <= len(passwords._COMMON) <= 100
    for entry in passwords._COMMON:
        assert len(entry) >= MIN_LENGTH
        assert entry == entry.casefold()
        assert password_problem(entry) is not None


def test_username_refused():
    assert password_problem("Dr.Anna.Meier", "dr.anna.meier") is not None
    assert password_problem("dr.anna.meier", "DR.ANNA.MEIER") is not None


def test_repeated_character_refused():
    assert password_problem("x" * 20) is not None
    assert password_problem("🙂" * 12) is not None


def test_unicode_passphrase_accepted():
    assert password_problem("Ærlig talt, det regner i Bergen 🌧") is None
    assert password_problem("Всё будет хорошо, правда") is None


def test_long_allowed_up_to_cap_then_refused():
    assert password_problem("ab" * (MAX_LENGTH // 2)) is None
    assert password_problem("ab" * (MAX_LENGTH // 2) + "c") is not None
    assert password_problem("x" * 10_000 + "y") is not None


def test_problem_is_a_sentence():
    problem = password_problem("short")
    assert problem is not None
    assert problem.endswith(".")


def test_hash_format_and_round_trip():
    stored = hash_password(GOOD)
    assert stored.startswith("scrypt$15$8$1$")
    assert len(stored.split("$")) == 6
    assert verify_password(GOOD, stored)
    assert hash_password(GOOD) != stored  # fresh salt each time


def test_wrong_password():
    stored = hash_password(GOOD)
    assert not verify_password(GOOD + " ", stored)
    assert not verify_password("", stored)


@pytest.mark.parametrize(
    "stored",
    [
        "",
        "garbage",
        "scrypt$15$8$1$abc",
        "bcrypt$15$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        "scrypt$x$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        "scrypt$15$8$1$not base64!$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        "scrypt$15$8$1$$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        "scrypt$15$8$1$AAAAAAAAAAAAAAAAAAAAAA==$",
        # Parameters that would need gigabytes of memory are refused, not attempted.
        "scrypt$30$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        "scrypt$20$64$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        "scrypt$15$8$0$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
    ],
)
def test_malformed_stored_hash_is_false(stored):
    assert verify_password(GOOD, stored) is False


def test_parameters_are_read_from_the_stored_string():
    # A hash made with other parameters still verifies, so the defaults can be raised later.
    salt = bytes(range(16))
    digest = Scrypt(salt=salt, length=32, n=2**14, r=8, p=2).derive(GOOD.encode())
    stored = f"scrypt$14$8$2${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"
    assert verify_password(GOOD, stored)
    assert not verify_password(GOOD + "!", stored)


def test_no_truncation():
    first = "p" * 199 + "a"
    second = "p" * 199 + "b"
    assert not verify_password(second, hash_password(first))


def test_nfkc_composed_and_decomposed_verify():
    composed = unicodedata.normalize("NFC", "café au lait, s'il vous plaît")
    decomposed = unicodedata.normalize("NFD", composed)
    assert composed != decomposed
    assert verify_password(decomposed, hash_password(composed))
    assert verify_password(composed, hash_password(decomposed))


def test_dummy_verify_is_false():
    assert dummy_verify(GOOD) is False
    assert dummy_verify("") is False
