"""The recording key check: the recipient parses, and no identity file is anywhere it looks."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from vsession.doctor import keys
from vsession.doctor.findings import Level

Keygen = Callable[[Path], str]


def test_a_valid_recipient_is_ok_with_its_fingerprint(tmp_path: Path, keygen: Keygen) -> None:
    recipient = keygen(tmp_path / "elsewhere" / "key.txt")
    finding = keys.check_recipient(recipient)
    assert finding.level is Level.OK
    assert recipient[:8] in finding.found and "sha256" in finding.found


def test_a_bad_recipient_is_a_problem(tmp_path: Path, keygen: Keygen) -> None:
    recipient = keygen(tmp_path / "elsewhere" / "key.txt")
    broken = recipient[:-1] + ("q" if recipient[-1] != "q" else "p")  # one character wrong
    finding = keys.check_recipient(broken)
    assert finding.level is Level.PROBLEM
    assert "bech32 checksum" in finding.found and "recording_recipient" in finding.fix


def test_an_identity_given_as_recipient_is_a_problem_that_never_echoes_it(
    tmp_path: Path, keygen: Keygen
) -> None:
    identity = tmp_path / "key.txt"
    keygen(identity)
    secret = next(line for line in identity.read_text().splitlines() if line.startswith("AGE-SECRET-KEY-1"))
    finding = keys.check_recipient(secret)
    assert finding.level is Level.PROBLEM
    assert "secret key" in finding.found and secret not in finding.line()


def test_no_recipient_is_a_warning() -> None:
    assert keys.check_recipient("").level is Level.WARN


def test_an_identity_left_in_the_key_folder_is_a_problem_naming_it(tmp_path: Path, keygen: Keygen) -> None:
    data = tmp_path / "data"
    (data / "recordings").mkdir(parents=True)
    left = data / "keys" / "practice-key.txt"
    recipient = keygen(left)
    finding = keys.check_identities([data, data / "keys", tmp_path / "etc"], [recipient])
    assert finding.level is Level.PROBLEM
    assert str(left) in finding.found
    assert "the secret key of this server's recording_recipient" in finding.found
    assert "shred -u" in finding.fix


def test_another_identity_pasted_into_a_config_folder_is_found_too(tmp_path: Path, keygen: Keygen) -> None:
    etc = tmp_path / "etc" / "vsession"
    etc.mkdir(parents=True)
    keygen(tmp_path / "elsewhere" / "key.txt")
    pasted = etc / "notes.txt"
    other = tmp_path / "elsewhere" / "other.txt"
    keygen(other)
    pasted.write_text("backup of the key, do not lose:\n" + other.read_text())
    finding = keys.check_identities([tmp_path / "data", etc], ["age1notthisone"])
    assert finding.level is Level.PROBLEM
    assert str(pasted) in finding.found and "this server's recording_recipient" not in finding.found


def test_a_clean_server_is_ok_and_says_what_it_read(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "keys").mkdir(parents=True)
    (data / "keys" / "audit.key").write_bytes(os.urandom(32))
    (data / "vsession.sqlite3").write_bytes(b"SQLite format 3\x00" + bytes(1000))
    # The prefix alone, as in code or docs, is not an identity.
    (data / "README").write_text("identities start with AGE-SECRET-KEY-1 and never belong here\n")
    finding = keys.check_identities([data, data / "keys", data])
    assert finding.level is Level.OK, finding.line()
    assert finding.found == f"none in 3 files under {data.resolve()}"


def test_a_fifo_does_not_stop_the_scan(tmp_path: Path, keygen: Keygen) -> None:
    data = tmp_path / "data"
    data.mkdir()
    os.mkfifo(data / "pipe")
    left = data / "z-key.txt"
    keygen(left)
    finding = keys.check_identities([data])
    assert finding.level is Level.PROBLEM and str(left) in finding.found
