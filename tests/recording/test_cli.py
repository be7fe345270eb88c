"""The practice's command line, run as a real process: `vsession keys generate`, and `vsession
recordings list | verify | decrypt | delete`, against files made by the stock `age` tool and a
recording made through a real call."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path
from typing import Any

from tests.support.cli import run_vsession as vsession
from tests.support.consent_calls import (
    audit,
    audit_intact,
    record_once,
    recordings,
    sha256_of,
)

PLAIN = os.urandom(200_000)  # three full 64 KiB chunks and a short final one


def stock_age_encrypt(recipient: str, plain: bytes, out: Path) -> None:
    subprocess.run(["age", "-r", recipient, "-o", str(out)], input=plain, check=True)


def test_keys_generate_writes_a_private_identity_that_stock_age_accepts(tmp_path: Path) -> None:
    identity = tmp_path / "practice.key"
    made = vsession("keys", "generate", "-o", str(identity))
    assert made.returncode == 0, made
    recipient = made.stdout.strip().splitlines()[-1]
    assert recipient.startswith("age1")
    assert "AGE-SECRET-KEY" not in made.stdout  # the secret goes to the file only
    assert stat.S_IMODE(identity.stat().st_mode) == 0o600
    content = identity.read_text()
    assert "AGE-SECRET-KEY-1" in content
    # Stock age agrees on the recipient of that identity, encrypts to it and decrypts with it.
    derived = subprocess.run(["age-keygen", "-y", str(identity)], capture_output=True, text=True, check=True)
    assert derived.stdout.strip() == recipient
    encrypted = tmp_path / "x.age"
    stock_age_encrypt(recipient, PLAIN, encrypted)
    back = subprocess.run(["age", "-d", "-i", str(identity), str(encrypted)], capture_output=True, check=True)
    assert back.stdout == PLAIN

    # Never overwrites a key.
    again = vsession("keys", "generate", "-o", str(identity))
    assert again.returncode == 2
    assert "exists" in again.stderr
    assert identity.read_text() == content


def test_verify_and_decrypt_accept_stock_age_files_and_call_a_modified_one_tampered(tmp_path: Path) -> None:
    identity = tmp_path / "stock.key"
    subprocess.run(["age-keygen", "-o", str(identity)], capture_output=True, check=True)
    recipient = subprocess.run(
        ["age-keygen", "-y", str(identity)], capture_output=True, text=True, check=True
    ).stdout.strip()
    encrypted = tmp_path / "stock.age"
    stock_age_encrypt(recipient, PLAIN, encrypted)

    verdict = vsession("recordings", "verify", str(encrypted), "-i", str(identity))
    assert verdict.returncode == 0, verdict
    assert verdict.stdout.startswith("COMPLETE")
    out = tmp_path / "plain.bin"
    opened = vsession("recordings", "decrypt", str(encrypted), "-i", str(identity), "-o", str(out))
    assert opened.returncode == 0, opened
    assert opened.stdout.startswith("COMPLETE")
    assert out.read_bytes() == PLAIN
    # decrypt does not overwrite either.
    twice = vsession("recordings", "decrypt", str(encrypted), "-i", str(identity), "-o", str(out))
    assert twice.returncode == 2 and out.read_bytes() == PLAIN

    # One byte changed inside a full chunk, or in the header's MAC. (A changed
    # recipient stanza reads as "not for this identity": with X25519 the two look the same.)
    data = encrypted.read_bytes()
    mac = data.index(b"\n--- ") + 5
    for name, where in (("payload", len(data) // 3), ("header", mac + 10)):
        changed = bytearray(data)
        changed[where] ^= 0x01
        tampered = tmp_path / f"tampered-{name}.age"
        tampered.write_bytes(bytes(changed))
        verdict = vsession("recordings", "verify", str(tampered), "-i", str(identity))
        assert verdict.returncode == 1, (name, verdict)
        assert verdict.stdout.startswith("TAMPERED"), (name, verdict.stdout)
        refused = tmp_path / f"tampered-{name}.bin"
        for salvage in ([], ["--salvage"]):
            result = vsession(
                "recordings", "decrypt", *salvage, str(tampered), "-i", str(identity), "-o", str(refused)
            )
            assert result.returncode == 1, (name, salvage, result)
            assert not refused.exists()

    # A file for someone else's key: a clear error, not a verdict.
    other = tmp_path / "other.key"
    subprocess.run(["age-keygen", "-o", str(other)], capture_output=True, check=True)
    wrong = vsession("recordings", "verify", str(encrypted), "-i", str(other))
    assert wrong.returncode == 2 and wrong.stdout == ""


async def test_list_verify_and_delete_a_recording_made_in_a_call(inprocess_call: Any, tmp_path: Path) -> None:
    rec = await record_once(inprocess_call, tmp_path)
    services, identity = rec.services, rec.identity
    data_dir = str(services.settings.data_dir)
    [row] = await recordings(services)
    path = services.settings.data_dir / "recordings" / row["file_name"]

    listed = vsession("recordings", "list", "--data-dir", data_dir)
    assert listed.returncode == 0, listed
    [line] = [x for x in listed.stdout.splitlines() if x.startswith(row["id"])]
    assert line.split() == [
        row["id"],
        row["session_id"],
        "1",
        "complete",
        str(path.stat().st_size),
        sha256_of(path),
    ]
    verdict = vsession("recordings", "verify", str(path), "-i", str(identity))
    assert verdict.returncode == 0 and verdict.stdout.startswith("COMPLETE"), verdict

    deleted = vsession("recordings", "delete", row["id"], "--data-dir", data_dir)
    assert deleted.returncode == 0, deleted
    assert not path.exists()
    [gone] = await recordings(services)
    assert gone["state"] == "deleted" and gone["deleted_at"] is not None
    [receipt] = await audit(services, "recording.delete")
    assert receipt["actor"] == "admin:cli"
    assert receipt["object"] == f"recording:{row['id']}"
    assert receipt["details"]["ciphertext_sha256"] == row["ciphertext_sha256"]
    assert receipt["details"]["bytes"] == row["bytes"]
    assert receipt["details"]["reason"] == "deleted by admin"
    await audit_intact(services)

    relisted = vsession("recordings", "list", "--data-dir", data_dir)
    assert row["id"] not in relisted.stdout
    again = vsession("recordings", "delete", row["id"], "--data-dir", data_dir)
    assert again.returncode == 1
    assert len(await audit(services, "recording.delete")) == 1
