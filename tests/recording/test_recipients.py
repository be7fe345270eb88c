"""The one parser of age recipients, used by the settings and by the encrypting writer, against
stock `age-keygen` (what a practice has) and stock `age` (which must refuse what we refuse)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import bech32
import pytest

from vsession.recording import age
from vsession.recording.age import EncryptingWriter
from vsession.recording.recipients import describe, parse_recipient, recording_status


def bech32_text(hrp: str, data: bytes) -> str:
    words = bech32.convertbits(data, 8, 5, True)
    assert words is not None
    return bech32.bech32_encode(hrp, words)


def swap_one(text: str, index: int) -> str:
    """`text` with the Bech32 character at `index` replaced by another one."""
    other = bech32.CHARSET[(bech32.CHARSET.index(text[index]) + 1) % 32]
    return text[:index] + other + text[index + 1 :]


def padded(key: bytes) -> str:
    """`key` with a non-zero bit in the padding after it: a second, non-canonical spelling."""
    words = bech32.convertbits(key, 8, 5, True)
    assert words is not None
    words[-1] |= 1
    return bech32.bech32_encode("age", words)


@pytest.fixture(scope="module")
def stock(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """An identity file made by stock age-keygen, and the recipient `age-keygen -y` derives from it."""
    identity = tmp_path_factory.mktemp("keys") / "practice.txt"
    subprocess.run(["age-keygen", "-o", str(identity)], check=True, capture_output=True)
    derived = subprocess.run(["age-keygen", "-y", str(identity)], check=True, capture_output=True, text=True)
    return identity, derived.stdout.strip()


def secret_of(identity: Path) -> str:
    [line] = [x for x in identity.read_text().splitlines() if x.startswith("AGE-SECRET-KEY-1")]
    return line


def bad_cases(identity: Path, recipient: str) -> dict[str, tuple[str, str]]:
    """Name -> (text, a fragment the error must contain). Every one passes the old 'age1' prefix
    check or is a mistake an admin can make."""
    key = bytes(bech32.convertbits(bech32.bech32_decode(recipient)[1], 5, 8, False))
    return {
        "checksum": (swap_one(recipient, 20), "checksum"),
        "last character": (swap_one(recipient, len(recipient) - 1), "checksum"),
        "cut short": (recipient[:-1], "checksum"),
        "not bech32": (recipient[:20] + "o" + recipient[21:], "character"),
        "plugin hrp": (bech32_text("age1yubikey", os.urandom(33)), "plugin"),
        "other hrp": (bech32_text("agf", key), "age1"),
        "31 bytes": (bech32_text("age", key[:31]), "31 bytes"),
        "33 bytes": (bech32_text("age", key + b"\x00"), "33 bytes"),
        "padding": (padded(key), "padding"),
        "upper case": (recipient.upper(), "lowercase"),
        "mixed case": (recipient[:30] + recipient[30:].upper(), "lowercase"),
        "low-order point": (bech32_text("age", bytes(32)), "low-order"),
        "identity": (secret_of(identity), "secret key"),
        "identity, lower case": (secret_of(identity).lower(), "secret key"),
    }


CASES = [
    "checksum",
    "last character",
    "cut short",
    "not bech32",
    "plugin hrp",
    "other hrp",
    "31 bytes",
    "33 bytes",
    "padding",
    "upper case",
    "mixed case",
    "low-order point",
    "identity",
    "identity, lower case",
]


def test_a_stock_recipient_parses_and_its_fingerprint_is_what_sha256sum_says(stock: tuple[Path, str]) -> None:
    identity, recipient = stock
    key = parse_recipient(f"  {recipient}\n")  # surrounding whitespace from a paste is harmless
    assert age.parse_recipient(recipient).public_bytes_raw() == key.public_bytes_raw()
    # What the server prints can be checked on the practice's computer with stock tools only.
    piped = subprocess.run(
        f"age-keygen -y '{identity}' | sha256sum | cut -c1-16",
        shell=True,
        check=True,
        capture_output=True,
        text=True,
    )
    assert describe(key) == f"{recipient[:8]}…{recipient[-4:]} (sha256 {piped.stdout.strip()})"


@pytest.mark.parametrize("case", CASES)
def test_bad_recipients_are_refused_like_stock_age_does_without_echoing_them(
    stock: tuple[Path, str], tmp_path: Path, case: str
) -> None:
    text, fragment = bad_cases(*stock)[case]
    with pytest.raises(ValueError) as caught:
        parse_recipient(text)
    message = str(caught.value)
    assert fragment in message
    assert "\n" not in message
    assert text not in message and text[4:24] not in message and text[-20:] not in message
    # Stock age refuses to encrypt to it too (the low-order point only when it tries to wrap).
    refused = subprocess.run(["age", "-r", text], input=b"x", capture_output=True, cwd=tmp_path)
    assert refused.returncode != 0 and refused.stdout == b""


def test_the_writer_refuses_with_the_same_words_before_writing(
    stock: tuple[Path, str], tmp_path: Path
) -> None:
    identity, recipient = stock
    for text, _ in bad_cases(identity, recipient).values():
        with pytest.raises(ValueError) as parsing:
            parse_recipient(text)
        path = tmp_path / "x.age"
        with path.open("wb") as handle, pytest.raises(ValueError) as writing:
            EncryptingWriter(handle, [recipient, text])
        assert str(writing.value) == str(parsing.value)
        assert path.stat().st_size == 0


def test_recording_status_line(stock: tuple[Path, str]) -> None:
    _, recipient = stock
    breakglass = age.generate_identity()[1]
    assert recording_status("", "") == "recording: disabled (no recording_recipient)"
    assert recording_status(recipient, "") == (
        f"recording: enabled, recipient {describe(parse_recipient(recipient))}"
    )
    assert recording_status(recipient, breakglass) == (
        f"recording: enabled, recipient {describe(parse_recipient(recipient))}, "
        f"break-glass {describe(parse_recipient(breakglass))}"
    )
