from __future__ import annotations

import re

from vsession.auth.recovery import ALPHABET, COUNT, hash_code, new_codes, normalise


def test_new_codes_shape():
    codes = new_codes()
    assert len(codes) == COUNT == 10
    assert len(set(codes)) == COUNT
    for code in codes:
        assert re.fullmatch(r"[0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{4}", code)
        assert set(code.replace("-", "")) <= set(ALPHABET)


def test_alphabet_is_32_unambiguous_characters():
    assert len(set(ALPHABET)) == len(ALPHABET) == 32  # 5 bits per character, 80 bits per code
    assert not set("ilou") & set(ALPHABET)


def test_normalise():
    assert normalise(" ABCD-efgh 2345-6789 ") == "abcdefgh23456789"


def test_normalise_reads_lookalike_letters_as_digits():
    assert normalise("OIL0-ab") == "0110ab"


def test_hash_code_ignores_formatting():
    code = new_codes()[0]
    assert hash_code(code) == hash_code(code.upper().replace("-", " "))
    assert re.fullmatch(r"[0-9a-f]{64}", hash_code(code))


def test_hash_code_differs_between_codes():
    a, b = new_codes()[:2]
    assert hash_code(a) != hash_code(b)
