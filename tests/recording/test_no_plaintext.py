"""No plaintext at rest: after a real recording, no file under the server's data dir, nor any file
the run wrote in the temp dir, holds unencrypted media; the data dir holds no age identity; and no
key material found on the server's disk opens the recording. Only the practice's identity, made
here and never given to the server, does.

Ciphertext is random, so short byte patterns turn up in it by chance (a 3-byte VP8 start code about
once in 16 MB). The checks therefore look for media structure: an EBML header with its first child
element, a Matroska DocType element saying webm or matroska, a Cluster with its Timestamp, and a VP8
keyframe start code followed by this test's frame size. Each detector is first shown to fire on the
decrypted recording itself.
"""

from __future__ import annotations

import base64
import binascii
import io
import os
import re
import sqlite3
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import bech32
import pytest
from aiortc import AudioStreamTrack
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from tests.support.call_client import CallClient
from tests.support.media import CounterTrack
from tests.support.practice_key import make_key
from vsession.recording import age

# An EBML variable-size integer: a length marker bit, then up to 7 more bytes.
_VINT = rb"(?:[\x80-\xff]|[\x40-\x7f].|[\x20-\x3f].{2}|[\x10-\x1f].{3}|[\x08-\x0f].{4}|" + (
    rb"[\x04-\x07].{5}|[\x02\x03].{6}|\x01.{7})"
)
_SIZE = CounterTrack.width.to_bytes(2, "little") + CounterTrack.height.to_bytes(2, "little")
MEDIA = {
    # EBML magic, its size, then one of the EBML header's own elements (EBMLVersion, ReadVersion,
    # MaxIDLength, MaxSizeLength, DocType, DocTypeVersion, DocTypeReadVersion).
    "EBML header": re.compile(rb"\x1a\x45\xdf\xa3" + _VINT + rb"\x42[\x86\xf7\xf2\xf3\x82\x87\x85]", re.S),
    "DocType webm/matroska": re.compile(rb"\x42\x82" + _VINT + rb"(?:webm|matroska)", re.S),
    "Matroska Cluster": re.compile(rb"\x1f\x43\xb6\x75" + _VINT + rb"\xe7", re.S),
    "VP8 keyframe": re.compile(re.escape(b"\x9d\x01\x2a" + _SIZE)),
}
EBML_MAGIC = b"\x1a\x45\xdf\xa3"
AGE_MAGIC = b"age-encryption.org/v1\n"
SECRET_KEY = re.compile(rb"age-secret-key-1", re.I)


def media_in(data: bytes, ciphertext: bool) -> list[str]:
    found = [name for name, pattern in MEDIA.items() if pattern.search(data)]
    # Outside ciphertext the bare 4-byte magic is already too much.
    if not ciphertext and EBML_MAGIC in data and "EBML header" not in found:
        found.append("EBML magic")
    return found


def files_under(root: Path, since: float | None = None, recursive: bool = True) -> Iterator[Path]:
    """Regular files under `root` (symlinks not followed), optionally only those changed since."""
    for folder, dirs, names in os.walk(root):
        here = Path(folder)
        if not recursive:
            dirs[:] = []
        for name in names:
            path = here / name
            try:
                info = path.lstat()
            except OSError:
                continue  # gone, or not ours to read
            if path.is_symlink() or not path.is_file():
                continue
            if since is None or max(info.st_mtime, info.st_ctime) >= since:
                yield path


def read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def key_candidates(data: bytes) -> set[bytes]:
    """Every 32-byte value a file holds raw (a whole 32-byte file), in hex, or in base64."""
    found = {data} if len(data) == 32 else set()
    for token in re.findall(rb"(?<![0-9a-fA-F])[0-9a-fA-F]{64}(?![0-9a-fA-F])", data):
        found.add(bytes.fromhex(token.decode()))
    for token in re.findall(rb"[A-Za-z0-9+/_-]{43}=?", data):
        for decode in (base64.b64decode, base64.urlsafe_b64decode):
            try:
                value = decode(token.rstrip(b"=") + b"=")
            except (binascii.Error, ValueError):
                continue
            if len(value) == 32:
                found.add(value)
    return found


def db_values(path: Path) -> Iterator[bytes]:
    """Every value stored in the server's database, as bytes."""
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            for row in db.execute(f'SELECT * FROM "{table}"'):
                for value in row:
                    if isinstance(value, bytes):
                        yield value
                    elif value is not None:
                        yield str(value).encode()


def as_age_identity(secret: bytes) -> str:
    words = bech32.convertbits(secret, 8, 5, True)
    assert words is not None
    return bech32.bech32_encode("age-secret-key-", words).upper()


def stock_age_with(identity_file: Path, encrypted: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["age", "-d", "-i", str(identity_file), "-o", os.devnull, str(encrypted)],
        capture_output=True,
        text=True,
    )


@pytest.fixture
def started() -> float:
    return time.time() - 1  # file times are coarser than time.time() on some file systems


async def record_a_call(call) -> None:
    def peer(who) -> CallClient:
        url, headers = call.ws(who)
        return CallClient(url, headers, {"camera": CounterTrack(), "microphone": AudioStreamTrack()})

    therapist, client = peer(call.therapist.agent), peer(call.clients[0])
    state = lambda c: (c.last("recording") or {}).get("state")  # noqa: E731
    try:
        await therapist.join()
        await client.join()
        await therapist.wait_for(
            lambda: therapist.frames[("s1", "camera")] >= 5 and client.frames[("t", "camera")] >= 5
        )
        await therapist.send({"type": "record", "action": "request"})
        await client.wait_for(lambda: client.last("consent_prompt") is not None)
        prompt = client.last("consent_prompt")
        assert prompt is not None
        await client.send(
            {"type": "consent", "request": prompt["request"], "prompt": prompt["prompt"], "answer": "accept"}
        )
        await client.wait_for(lambda: state(client) == "recording" and state(therapist) == "recording")
        seen = therapist.frames[("s1", "camera")]
        await therapist.wait_for(lambda: therapist.frames[("s1", "camera")] >= seen + 90)  # ~3 s
        await therapist.send({"type": "record", "action": "stop"})
        await therapist.wait_for(lambda: state(therapist) == "stopped" and state(client) == "stopped")
        for peer_ in (client, therapist):
            await peer_.send({"type": "leave"})
        await therapist.wait_for(
            lambda: {"type": "left"} in therapist.messages and {"type": "left"} in client.messages
        )
    finally:
        await therapist.close()
        await client.close()


async def test_no_plaintext_and_nothing_on_the_server_decrypts(
    inprocess_call, tmp_path: Path, started: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    offline = tmp_path / "practice"  # the practice's identity: made here, never given to the server
    offline.mkdir()
    identity, recipient = make_key(offline)
    # The server runs in this process: give it a temp dir of its own, so that all of it can be
    # checked, whoever else shares the system's.
    system_temp = Path(tempfile.gettempdir())
    server_temp = tmp_path / "server-temp"
    server_temp.mkdir()
    monkeypatch.setenv("TMPDIR", str(server_temp))
    monkeypatch.setattr(tempfile, "tempdir", str(server_temp))

    call = await inprocess_call(clients=1, recording_recipient=recipient)
    await record_a_call(call)
    data_dir = call.services.settings.data_dir
    recordings = sorted((data_dir / "recordings").glob("*.age"))
    assert len(recordings) == 1, recordings
    recording = recordings[0]

    # The detectors find this very recording's media once it is decrypted (in memory only).
    plain = io.BytesIO()
    result = age.decrypt(recording, age.read_identities(identity), plain)
    assert result.status is age.Status.COMPLETE, result
    assert sorted(media_in(plain.getvalue(), ciphertext=False)) == sorted(MEDIA), "a detector is blind"

    # 1. No unencrypted media on disk: all of the data dir and of the server's temp dir, and in
    # the shared temp folders, the files at their top level changed during the test (a path
    # hard-coded to /tmp). Their subfolders belong to other processes.
    scanned: dict[Path, list[str]] = {}
    for path in [
        *files_under(data_dir),
        *files_under(server_temp),
        *files_under(tmp_path, since=started),
        *(
            p
            for root in {system_temp, Path("/tmp"), Path("/var/tmp"), Path("/dev/shm")}
            if root.is_dir()
            for p in files_under(root, since=started, recursive=False)
        ),
    ]:
        data = read(path)
        if data is None:
            continue
        scanned[path] = media_in(data, ciphertext=data.startswith(AGE_MAGIC))
    leaks = {str(path): found for path, found in scanned.items() if found}
    assert not leaks, f"unencrypted media on disk: {leaks}"
    # The walk reached the recording, the database, and what this test wrote in the temp dir.
    assert {recording, data_dir / "vsession.sqlite3", identity} <= set(scanned), sorted(scanned)
    print(f"\nscanned {len(scanned)} files, {sum(len(read(p) or b'') for p in scanned)} bytes: no media")

    # 2. No age identity anywhere in the data dir (the DB included).
    secrets_found = [str(p) for p in files_under(data_dir) if SECRET_KEY.search(read(p) or b"")]
    assert not secrets_found, f"an age identity on the server: {secrets_found}"

    # 3. No key found on the server opens the recording: every 32-byte value in every file of the
    # data dir (raw, hex or base64) and in every database value, tried as an X25519 identity.
    candidates: set[bytes] = set()
    for path in files_under(data_dir):
        if path != recording:
            candidates |= key_candidates(read(path) or b"")
    for value in db_values(data_dir / "vsession.sqlite3"):
        candidates |= key_candidates(value)
    key_files = sorted(p for p in files_under(data_dir / "keys"))
    assert key_files and all((read(p) or b"") in candidates for p in key_files)
    with pytest.raises(age.NoIdentityMatches):
        age.verify(recording, [X25519PrivateKey.from_private_bytes(c) for c in candidates])
    # The same with the stock tool, for each key file the server keeps.
    for path in key_files:
        wrong = tmp_path / f"{path.name}.identity"
        wrong.write_text(as_age_identity(path.read_bytes()) + "\n")
        run = stock_age_with(wrong, recording)
        assert run.returncode != 0 and "no identity matched" in run.stderr.lower(), (path, run.stderr)
    assert stock_age_with(identity, recording).returncode == 0  # the practice's identity does open it
    print(f"tried {len(candidates)} key candidates from the server's disk: none opens the recording")
