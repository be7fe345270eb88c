"""`vsession restore` refuses, with one clear line and a non-zero exit, a wrong identity, a changed
or cut file, a target that is not empty, and archives it did not write (made here with stock `age`
around a changed tar), and then it has written nothing."""

from __future__ import annotations

import io
import json
import os
import subprocess
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.practice_key import make_key

Cli = Callable[..., subprocess.CompletedProcess[str]]


@dataclass(frozen=True)
class Made:
    backup: Path
    identity: Path
    recipient: str
    folder: Path


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory, cli: Cli) -> Made:
    """One real backup for the module: refused restores never touch it."""
    folder = tmp_path_factory.mktemp("made")
    identity, recipient = make_key(folder)
    assert cli("setup-link", "--data-dir", folder / "data").returncode == 0
    backup = folder / "practice.backup.age"
    done = cli(
        "backup", "--data-dir", folder / "data", "-o", backup, env={"VSESSION_RECORDING_RECIPIENT": recipient}
    )
    assert done.returncode == 0, done
    return Made(backup, identity, recipient, folder)


def refused(result: subprocess.CompletedProcess[str], code: int, *phrases: str) -> None:
    assert result.returncode == code, result
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for phrase in phrases:
        assert phrase in result.stderr, result.stderr


def test_a_restore_into_an_empty_folder_works(made: Made, tmp_path: Path, cli: Cli) -> None:
    """The control for the refusals below: the same backup and identity restore."""
    target = tmp_path / "empty"
    target.mkdir(mode=0o755)
    done = cli("restore", made.backup, "-i", made.identity, "--data-dir", target)
    assert done.returncode == 0, done
    assert (target / "vsession.sqlite3").is_file() and (target / "keys" / "audit-hmac.key").is_file()
    assert oct(target.stat().st_mode & 0o777) == oct(0o700)


def test_another_identity_opens_nothing(made: Made, tmp_path: Path, cli: Cli) -> None:
    other, _ = make_key(tmp_path)
    target = tmp_path / "new"
    result = cli("restore", made.backup, "-i", other, "--data-dir", target)
    refused(result, 1, "does not open", "nothing restored")
    assert not target.exists()


@pytest.mark.parametrize(
    ("change", "verdict"),
    [
        ("flip a payload byte", "TAMPERED"),
        ("cut the end off", "TRUNCATED"),
        ("flip a header byte", "TAMPERED"),
    ],
)
def test_a_changed_or_cut_file_is_refused(
    made: Made, tmp_path: Path, cli: Cli, change: str, verdict: str
) -> None:
    data = bytearray(made.backup.read_bytes())
    if change == "flip a payload byte":
        data[len(data) // 2] ^= 0x01
    elif change == "cut the end off":
        del data[-100:]
    else:
        data[data.index(b"\n--- ") + 10] ^= 0x01
    changed = tmp_path / "changed.age"
    changed.write_bytes(bytes(data))
    target = tmp_path / "new"
    result = cli("restore", changed, "-i", made.identity, "--data-dir", target)
    refused(result, 1, verdict, "nothing restored")
    assert not target.exists()


def test_a_folder_that_is_not_empty_is_left_alone(made: Made, tmp_path: Path, cli: Cli) -> None:
    target = tmp_path / "live"
    target.mkdir()
    (target / "vsession.sqlite3").write_bytes(b"someone's data")
    result = cli("restore", made.backup, "-i", made.identity, "--data-dir", target)
    refused(result, 2, "not empty", "nothing was changed")
    assert [p.name for p in target.iterdir()] == ["vsession.sqlite3"]
    assert (target / "vsession.sqlite3").read_bytes() == b"someone's data"

    # The same for a key folder kept outside the data folder.
    keys = tmp_path / "keys"
    keys.mkdir()
    (keys / "audit-hmac.key").write_bytes(b"k" * 32)
    target = tmp_path / "new"
    result = cli(
        "restore", made.backup, "-i", made.identity, "--data-dir", target, env={"VSESSION_KEY_DIR": str(keys)}
    )
    refused(result, 2, "key folder", "not empty")
    assert not target.exists() and [p.name for p in keys.iterdir()] == ["audit-hmac.key"]


def test_a_missing_identity_file_is_a_usage_error(made: Made, tmp_path: Path, cli: Cli) -> None:
    target = tmp_path / "new"
    result = cli("restore", made.backup, "-i", tmp_path / "absent.txt", "--data-dir", target)
    refused(result, 2, "cannot read identity file")
    assert not target.exists()


def _tar(entries: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for member, content in entries:
            tar.addfile(member, io.BytesIO(content) if content is not None else None)
    return out.getvalue()


def _plain(made: Made) -> list[tuple[tarfile.TarInfo, bytes | None]]:
    """The real backup's members, decrypted by stock age."""
    plain = subprocess.run(
        ["age", "-d", "-i", str(made.identity), str(made.backup)], capture_output=True, check=True
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(plain)) as tar:
        return [(m, tar.extractfile(m).read()) for m in tar.getmembers()]  # type: ignore[union-attr]


def _file(name: str, content: bytes) -> tuple[tarfile.TarInfo, bytes]:
    member = tarfile.TarInfo(name)
    member.size = len(content)
    return member, content


def _changed_info(entries: list[tuple[tarfile.TarInfo, bytes | None]], **changes: object) -> None:
    member, content = entries[0]
    assert member.name == "backup.json" and content is not None
    entries[0] = _file("backup.json", json.dumps(json.loads(content) | changes).encode())


def _crafted(made: Made, case: str) -> bytes:
    entries = _plain(made)
    if case == "a path out of the folder":
        entries.insert(2, _file("../evil", b"x"))
    elif case == "a symbolic link":
        link = tarfile.TarInfo("keys/link")
        link.type = tarfile.SYMTYPE
        link.linkname = "/etc/passwd"
        entries.insert(2, (link, None))
    elif case == "another format":
        _changed_info(entries, format="vsession-backup/99")
    elif case == "a newer schema":
        _changed_info(entries, schema=999)
    elif case == "a changed database":
        member, content = entries[1]
        assert member.name == "vsession.sqlite3" and content is not None
        entries[1] = _file(member.name, content[:-1] + bytes([content[-1] ^ 1]))
    elif case == "a key file missing":
        entries = [e for e in entries if e[0].name != "keys/totp-secrets.key"]
    else:
        return os.urandom(5000)
    return _tar(entries)


@pytest.mark.parametrize(
    ("case", "phrase"),
    [
        ("a path out of the folder", "never writes: '../evil'"),
        ("a symbolic link", "never writes: 'keys/link'"),
        ("another format", "'vsession-backup/99'"),
        ("a newer schema", "knows up to"),
        ("a changed database", "checksum"),
        ("a key file missing", "key files"),
        ("not an archive", "not a readable archive"),
    ],
)
def test_an_archive_vsession_did_not_write_is_refused(
    made: Made, tmp_path: Path, cli: Cli, case: str, phrase: str
) -> None:
    crafted = tmp_path / "crafted.age"
    subprocess.run(["age", "-r", made.recipient, "-o", str(crafted)], input=_crafted(made, case), check=True)
    target = tmp_path / "sub" / "new"
    result = cli("restore", crafted, "-i", made.identity, "--data-dir", target)
    refused(result, 1, phrase, "nothing restored")
    assert list(tmp_path.iterdir()) == [crafted]  # no target, no ../evil
