"""The age v1 writer and reader against the real stock `age` / `age-keygen` tools: both
directions of interoperability, truncation and salvage, tampering, fsync behaviour, no plaintext
on disk, a kill -9 mid-write, and PyAV muxing WebM straight into the encrypting writer."""

from __future__ import annotations

import errno
import io
import os
import random
import shutil
import stat
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import av
import pytest

from vsession.recording import age
from vsession.recording.age import (
    CHUNK_SIZE,
    NONCE_SIZE,
    SEALED_CHUNK_SIZE,
    TAG_SIZE,
    EncryptingWriter,
    NoIdentityMatches,
    Status,
    UnsupportedFile,
)

REPO = Path(__file__).resolve().parents[2]
MARKER = b"VSESSION-PLAINTEXT-MARKER"
EBML_MAGIC = b"\x1a\x45\xdf\xa3"


def tool(name: str) -> str:
    path = shutil.which(name)
    assert path, f"the stock `{name}` tool is required (Debian package `age`)"
    return path


@dataclass(frozen=True)
class Key:
    file: Path
    recipient: str


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Key]:
    """practice: made by stock age-keygen; breakglass: made by us; stranger: nobody's recipient."""
    folder = tmp_path_factory.mktemp("keys")
    result = {}
    practice = folder / "practice.txt"
    subprocess.run([tool("age-keygen"), "-o", str(practice)], check=True, capture_output=True)
    result["practice"] = Key(practice, age_keygen_recipient(practice))
    for name in ("breakglass", "stranger"):
        identity, recipient = age.generate_identity()
        age.write_identity_file(folder / f"{name}.txt", identity, recipient)
        result[name] = Key(folder / f"{name}.txt", recipient)
    return result


def age_keygen_recipient(identity_file: Path) -> str:
    done = subprocess.run([tool("age-keygen"), "-y", str(identity_file)], check=True, capture_output=True)
    return done.stdout.decode().strip()


def stock_decrypt(path: Path, identity_file: Path) -> bytes:
    done = subprocess.run(
        [tool("age"), "-d", "-i", str(identity_file), str(path)], check=True, capture_output=True
    )
    return done.stdout


def stock_encrypt(payload: bytes, path: Path, *args: str) -> Path:
    subprocess.run([tool("age"), *args, "-o", str(path)], input=payload, check=True, capture_output=True)
    return path


def write_ours(path: Path, payload: bytes, recipients: list[str], piece: int = 40_000) -> Path:
    """Writes in uneven pieces so chunk boundaries fall inside write() calls."""
    with path.open("wb") as handle, EncryptingWriter(handle, recipients) as writer:
        for start in range(0, len(payload), piece):
            assert writer.write(payload[start : start + piece]) == len(payload[start : start + piece])
    return path


def identities(key: Key) -> list:
    return age.read_identities(key.file)


def header_size(data: bytes) -> int:
    return data.index(b"\n", data.index(b"\n--- ") + 1) + 1


def payload_of(size: int, seed: int = 7) -> bytes:
    return random.Random(seed).randbytes(size)


def decrypt_ours(path: Path, key: Key, salvage: bool = False) -> tuple[age.Result, bytes]:
    out = io.BytesIO()
    result = age.decrypt(path, identities(key), out, salvage=salvage)
    assert result.written == len(out.getvalue())
    return result, out.getvalue()


# --- interoperability -------------------------------------------------------------------


SIZES = [0, 1, 65535, 65536, 65537, 3 * 65536, 300_000]


@pytest.mark.parametrize("size", SIZES)
def test_stock_age_decrypts_what_we_write(tmp_path: Path, keys: dict[str, Key], size: int) -> None:
    payload = payload_of(size)
    path = write_ours(tmp_path / "x.age", payload, [keys["practice"].recipient])
    assert stock_decrypt(path, keys["practice"].file) == payload

    chunks = max(1, -(-size // CHUNK_SIZE))
    data = path.read_bytes()
    assert len(data) == header_size(data) + NONCE_SIZE + size + chunks * TAG_SIZE
    result, plaintext = decrypt_ours(path, keys["practice"])
    assert (result.status, result.chunks, result.plaintext_bytes) == (Status.COMPLETE, chunks, size)
    assert plaintext == payload


def test_either_recipient_decrypts_with_stock_age(tmp_path: Path, keys: dict[str, Key]) -> None:
    payload = payload_of(200_000)
    path = write_ours(tmp_path / "x.age", payload, [keys["practice"].recipient, keys["breakglass"].recipient])
    assert path.read_bytes().count(b"\n-> X25519 ") == 2
    for name in ("practice", "breakglass"):
        assert stock_decrypt(path, keys[name].file) == payload
        assert decrypt_ours(path, keys[name])[1] == payload


@pytest.mark.parametrize("size", [0, 1, 65536, 200_000])
def test_we_read_stock_age_files(tmp_path: Path, keys: dict[str, Key], size: int) -> None:
    payload = payload_of(size)
    by_r = stock_encrypt(payload, tmp_path / "r.age", "-r", keys["practice"].recipient)
    recipients_file = tmp_path / "recipients.txt"
    recipients_file.write_text(f"# team\n{keys['breakglass'].recipient}\n\n{keys['practice'].recipient}\n")
    by_big_r = stock_encrypt(payload, tmp_path / "R.age", "-R", str(recipients_file))
    for path, key in ((by_r, "practice"), (by_big_r, "practice"), (by_big_r, "breakglass")):
        assert age.verify(path, identities(keys[key])).status is Status.COMPLETE
        result, plaintext = decrypt_ours(path, keys[key])
        assert result.status is Status.COMPLETE
        assert plaintext == payload


def test_stock_age_accepts_our_identity_file(tmp_path: Path, keys: dict[str, Key]) -> None:
    identity, recipient = age.generate_identity()
    assert identity.startswith("AGE-SECRET-KEY-1") and recipient.startswith("age1")
    path = tmp_path / "mine.txt"
    age.write_identity_file(path, identity, recipient)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    lines = path.read_text().splitlines()
    assert lines[0].startswith("# created: ") and lines[1] == f"# public key: {recipient}"
    assert lines[2] == identity
    assert age_keygen_recipient(path) == recipient

    encrypted = stock_encrypt(b"hello", tmp_path / "hello.age", "-r", recipient)
    assert stock_decrypt(encrypted, path) == b"hello"
    assert decrypt_ours(encrypted, Key(path, recipient))[1] == b"hello"

    with pytest.raises(FileExistsError):
        age.write_identity_file(path, *age.generate_identity())
    assert path.read_text().splitlines()[2] == identity  # untouched
    other_identity, _ = age.generate_identity()
    with pytest.raises(ValueError, match="does not belong"):
        age.write_identity_file(tmp_path / "mismatch.txt", other_identity, recipient)
    assert not (tmp_path / "mismatch.txt").exists()


def test_identity_files_with_comments_blank_lines_and_several_keys(
    tmp_path: Path, keys: dict[str, Key]
) -> None:
    combined = tmp_path / "both.txt"
    combined.write_text(
        "\n# leading comment\n\n"
        + keys["practice"].file.read_text()
        + "\r\n   \n"
        + keys["breakglass"].file.read_text()
    )
    found = age.read_identities(combined)
    assert len(found) == 2
    path = write_ours(tmp_path / "x.age", b"data", [keys["breakglass"].recipient])
    assert age.verify(path, found).status is Status.COMPLETE

    secret = keys["practice"].file.read_text().splitlines()[-1]
    bad = tmp_path / "bad.txt"
    bad.write_text(f"# ok\n{secret[:-1]}x\n")
    with pytest.raises(ValueError, match="line 2") as caught:
        age.read_identities(bad)
    assert secret[:-1] not in str(caught.value)
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing here\n\n")
    with pytest.raises(ValueError, match="no age identity"):
        age.read_identities(empty)


def test_parse_recipient(keys: dict[str, Key]) -> None:
    good = keys["practice"].recipient
    assert (
        age.parse_recipient(f"  {good}\n").public_bytes_raw() == age.parse_recipient(good).public_bytes_raw()
    )
    flipped = good[:-1] + ("q" if good[-1] != "q" else "p")
    for text, message in [
        (flipped, "bech32"),
        (good[:10] + good[10:].upper(), "bech32"),  # mixed case
        ("age1qqqqqqqq", "bech32|32-byte"),
        ("npub1" + good[4:], "starts with 'age1'"),
        ("", "starts with 'age1'"),
    ]:
        with pytest.raises(ValueError, match=message):
            age.parse_recipient(text)
    secret = keys["practice"].file.read_text().splitlines()[-1]
    with pytest.raises(ValueError, match="secret key") as caught:
        age.parse_recipient(secret)
    assert secret not in str(caught.value)
    with pytest.raises(ValueError):
        EncryptingWriter(io.BytesIO(), [])


def test_unknown_stanzas_are_skipped_but_covered_by_the_mac(tmp_path: Path, keys: dict[str, Key]) -> None:
    """Grease stanzas of other types, with bodies of 0, 48 (exactly one 64-column line, so an
    empty final line follows) and 100 bytes: stock age and we both read the file."""
    file_key = os.urandom(16)
    stanzas = [
        age._Stanza("x-grease", ("a", "B!c"), b""),
        age._Stanza("other-grease", (), os.urandom(48)),
        age._x25519_stanza(age.parse_recipient(keys["practice"].recipient), file_key),
        age._Stanza("more.grease", ("1",), os.urandom(100)),
    ]
    header = age._encode_header(stanzas, file_key)
    assert b"\n\n" in header  # the empty final body lines
    nonce = os.urandom(NONCE_SIZE)
    aead = age._payload_aead(file_key, nonce)
    payload = payload_of(70_000)
    body = aead.encrypt(age._chunk_nonce(0, False), payload[:CHUNK_SIZE], None)
    body += aead.encrypt(age._chunk_nonce(1, True), payload[CHUNK_SIZE:], None)
    path = tmp_path / "grease.age"
    path.write_bytes(header + nonce + body)
    assert stock_decrypt(path, keys["practice"].file) == payload
    result, plaintext = decrypt_ours(path, keys["practice"])
    assert result.status is Status.COMPLETE and plaintext == payload

    # Changing a grease stanza breaks the header MAC.
    tampered = tmp_path / "tampered.age"
    tampered.write_bytes(path.read_bytes().replace(b"B!c", b"B!d", 1))
    assert age.verify(tampered, identities(keys["practice"])).status is Status.TAMPERED


def test_armored_files_are_refused_clearly(tmp_path: Path, keys: dict[str, Key]) -> None:
    path = stock_encrypt(b"hi", tmp_path / "a.age", "-a", "-r", keys["practice"].recipient)
    with pytest.raises(UnsupportedFile, match="armor"):
        age.verify(path, identities(keys["practice"]))


# --- truncation and salvage -------------------------------------------------------------


FOUR_CHUNKS = 3 * CHUNK_SIZE + 1000  # three full non-final chunks and a short final one


@pytest.fixture(params=["ours", "stock"])
def four_chunk_file(
    request: pytest.FixtureRequest, tmp_path: Path, keys: dict[str, Key]
) -> tuple[Path, bytes]:
    payload = payload_of(FOUR_CHUNKS, seed=11)
    if request.param == "ours":
        return write_ours(tmp_path / "full.age", payload, [keys["practice"].recipient]), payload
    return stock_encrypt(payload, tmp_path / "full.age", "-r", keys["practice"].recipient), payload


def cut(source: Path, size: int) -> Path:
    target = source.with_name(f"cut-{size}.age")
    target.write_bytes(source.read_bytes()[:size])
    return target


def test_cut_inside_the_header_is_tampered(four_chunk_file: tuple[Path, bytes], keys: dict[str, Key]) -> None:
    path, _ = four_chunk_file
    head = header_size(path.read_bytes())
    for size in (0, 5, 22, 30, head - 20, head - 1):
        result = age.verify(cut(path, size), identities(keys["practice"]))
        assert result.status is Status.TAMPERED, size
        assert "ends inside the header" in result.detail or "not an age v1 file" in result.detail


def test_cut_after_the_header_or_between_chunks_is_truncated(
    four_chunk_file: tuple[Path, bytes], keys: dict[str, Key]
) -> None:
    path, payload = four_chunk_file
    start = header_size(path.read_bytes()) + NONCE_SIZE
    cases = {start - NONCE_SIZE: 0, start - 3: 0, start: 0}
    cases |= {start + k * SEALED_CHUNK_SIZE: k for k in (1, 2, 3)}
    for size, full_chunks in cases.items():
        check_truncated(cut(path, size), keys["practice"], payload, full_chunks)


def test_cut_inside_a_chunk_is_truncated(four_chunk_file: tuple[Path, bytes], keys: dict[str, Key]) -> None:
    path, payload = four_chunk_file
    start = header_size(path.read_bytes()) + NONCE_SIZE
    for k in (0, 1, 2):  # inside a full chunk: 1 byte, shorter than a tag, mid-way, 1 byte short
        for partial in (1, 15, 16, 30_000, SEALED_CHUNK_SIZE - 1):
            check_truncated(cut(path, start + k * SEALED_CHUNK_SIZE + partial), keys["practice"], payload, k)
    final_start = start + 3 * SEALED_CHUNK_SIZE
    for partial in (1, 500, 1000 + TAG_SIZE - 1):  # inside the short final chunk
        check_truncated(cut(path, final_start + partial), keys["practice"], payload, 3)


def check_truncated(path: Path, key: Key, payload: bytes, full_chunks: int) -> None:
    result = age.verify(path, identities(key))
    assert (result.status, result.chunks) == (Status.TRUNCATED, full_chunks), (path.name, result)
    assert result.plaintext_bytes == full_chunks * CHUNK_SIZE

    refused, nothing = decrypt_ours(path, key)
    assert refused.status is Status.TRUNCATED and nothing == b""
    salvaged, prefix = decrypt_ours(path, key, salvage=True)
    assert salvaged.status is Status.TRUNCATED
    assert prefix == payload[: full_chunks * CHUNK_SIZE]
    assert salvaged.written == len(prefix)


def test_salvage_of_a_complete_file_is_the_whole_file(tmp_path: Path, keys: dict[str, Key]) -> None:
    payload = payload_of(100_000)
    path = write_ours(tmp_path / "x.age", payload, [keys["practice"].recipient])
    result, plaintext = decrypt_ours(path, keys["practice"], salvage=True)
    assert result.status is Status.COMPLETE and plaintext == payload


def test_kill_9_mid_write_leaves_a_truncated_file_with_its_sealed_chunks(
    tmp_path: Path, keys: dict[str, Key]
) -> None:
    path = tmp_path / "crash.age"
    child = (
        "import os, signal, sys\n"
        "from vsession.recording.age import EncryptingWriter\n"
        "payload = bytes(range(256)) * 800\n"  # 204,800 bytes: 3 chunks sealed, 8,192 buffered
        "writer = EncryptingWriter(open(sys.argv[1], 'wb'), [sys.argv[2]])\n"
        "writer.write(payload)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", child, str(path), keys["practice"].recipient], cwd=REPO, capture_output=True
    )
    assert done.returncode == -9, done.stderr
    check_truncated(path, keys["practice"], bytes(range(256)) * 800, 3)


# --- tampering --------------------------------------------------------------------------


@pytest.fixture
def three_full_chunks(tmp_path: Path, keys: dict[str, Key]) -> tuple[Path, bytes]:
    """Payload of exactly 3 × 64 KiB, so the final chunk is full-length (and flagged last)."""
    payload = payload_of(3 * CHUNK_SIZE, seed=3)
    path = write_ours(tmp_path / "x.age", payload, [keys["practice"].recipient, keys["breakglass"].recipient])
    return path, payload


def variant(path: Path, data: bytes, name: str) -> Path:
    target = path.with_name(f"{name}.age")
    target.write_bytes(data)
    return target


def flip(data: bytes, offset: int, bit: int = 0) -> bytes:
    changed = bytearray(data)
    changed[offset] ^= 1 << bit
    return bytes(changed)


def other_base64_char(data: bytes, offset: int) -> bytes:
    """Change one base64 character to another valid one, so the header still parses and only
    the MAC can notice (a bit flip may make invalid base64 instead: the next test covers it)."""
    changed = bytearray(data)
    changed[offset] = ord("A") if changed[offset] != ord("A") else ord("B")
    return bytes(changed)


def assert_tampered(path: Path, key: Key) -> age.Result:
    result = age.verify(path, identities(key))
    assert result.status is Status.TAMPERED, result
    for salvage in (False, True):
        refused, nothing = decrypt_ours(path, key, salvage=salvage)
        assert refused.status is Status.TAMPERED and nothing == b""
    return result


def test_tampering_is_detected(three_full_chunks: tuple[Path, bytes], keys: dict[str, Key]) -> None:
    path, _ = three_full_chunks
    data = path.read_bytes()
    head = header_size(data)
    start = head + NONCE_SIZE
    practice = keys["practice"]
    assert age.verify(path, identities(practice)).status is Status.COMPLETE

    assert "first line" in assert_tampered(variant(path, flip(data, 3), "version"), practice).detail
    breakglass_line = data.index(b"-> X25519 ", data.index(b"-> X25519 ") + 1)
    stanza = other_base64_char(data, breakglass_line + 20)
    assert "MAC does not verify" in assert_tampered(variant(path, stanza, "stanza"), practice).detail
    mac = other_base64_char(data, head - 10)
    assert "MAC does not verify" in assert_tampered(variant(path, mac, "mac"), practice).detail
    middle = start + SEALED_CHUNK_SIZE + 1234
    assert "chunk 1" in assert_tampered(variant(path, flip(data, middle), "middle"), practice).detail
    last = start + 2 * SEALED_CHUNK_SIZE + 99
    assert "chunk 2" in assert_tampered(variant(path, flip(data, last), "last"), practice).detail
    tag = len(data) - 1
    assert "chunk 2" in assert_tampered(variant(path, flip(data, tag, 7), "tag"), practice).detail
    for extra in (b"\x00", os.urandom(SEALED_CHUNK_SIZE)):
        appended = assert_tampered(variant(path, data + extra, "appended"), practice)
        assert "follows the final chunk" in appended.detail
    chunk = [data[start + i * SEALED_CHUNK_SIZE : start + (i + 1) * SEALED_CHUNK_SIZE] for i in range(3)]
    swapped = data[:start] + chunk[1] + chunk[0] + chunk[2]
    assert "chunk 0" in assert_tampered(variant(path, swapped, "swapped"), practice).detail
    dropped_middle = data[:start] + chunk[0] + chunk[2]
    assert_tampered(variant(path, dropped_middle, "dropped"), practice)


def test_every_header_byte_is_protected(tmp_path: Path, keys: dict[str, Key]) -> None:
    """Flip one bit of each header byte: never COMPLETE. Flips inside our own X25519 stanza
    look like a stanza for someone else (NoIdentityMatches); everything else is TAMPERED."""
    path = write_ours(
        tmp_path / "x.age", payload_of(1000), [keys["breakglass"].recipient, keys["practice"].recipient]
    )
    data = path.read_bytes()
    ours = data.index(b"-> X25519 ", data.index(b"-> X25519 ") + 1)
    ours_end = data.index(b"\n", data.index(b"\n", ours) + 1)
    practice = identities(keys["practice"])
    outcomes = set()
    for offset in range(header_size(data)):
        target = variant(path, flip(data, offset, offset % 8), "flipped")
        try:
            status = age.verify(target, practice).status
        except NoIdentityMatches:
            assert ours + 3 <= offset < ours_end, offset
            status = "no identity"
        outcomes.add(status)
        assert status != Status.COMPLETE, offset
    assert outcomes == {Status.TAMPERED, "no identity"}


def test_changes_confined_to_a_short_final_chunk_read_as_truncated(
    tmp_path: Path, keys: dict[str, Key]
) -> None:
    """The documented limit: a damaged short final chunk is indistinguishable from a write cut
    off by a crash, so it is TRUNCATED, never COMPLETE, and it is not part of the salvage."""
    payload = payload_of(CHUNK_SIZE + 500)
    path = write_ours(tmp_path / "x.age", payload, [keys["practice"].recipient])
    data = path.read_bytes()
    check_truncated(variant(path, flip(data, len(data) - 100), "short-last"), keys["practice"], payload, 1)
    check_truncated(variant(path, data + b"extra", "short-appended"), keys["practice"], payload, 1)
    # Enough appended to make the piece full-length is caught as tampering again.
    assert_tampered(variant(path, data + bytes(SEALED_CHUNK_SIZE), "long-appended"), keys["practice"])


def test_wrong_identity_is_a_clear_error_not_a_verdict(tmp_path: Path, keys: dict[str, Key]) -> None:
    for path in (
        write_ours(tmp_path / "ours.age", b"secret", [keys["practice"].recipient]),
        stock_encrypt(b"secret", tmp_path / "stock.age", "-r", keys["practice"].recipient),
    ):
        with pytest.raises(NoIdentityMatches, match="none of the 1 identities"):
            age.verify(path, identities(keys["stranger"]))
        out = io.BytesIO()
        with pytest.raises(NoIdentityMatches):
            age.decrypt(path, identities(keys["stranger"]), out, salvage=True)
        assert out.getvalue() == b""
    assert (
        age.verify(path, identities(keys["stranger"]) + identities(keys["practice"])).status
        is Status.COMPLETE
    )


# --- the writer on disk -----------------------------------------------------------------


def test_writer_writes_and_fsyncs_each_full_chunk_at_once(tmp_path: Path, keys: dict[str, Key]) -> None:
    payload = (MARKER + EBML_MAGIC + os.urandom(200)) * 1000
    path = tmp_path / "live.age"
    with path.open("wb") as handle:
        writer = EncryptingWriter(handle, [keys["practice"].recipient])
        head = header_size(path.read_bytes())
        assert path.stat().st_size == head + NONCE_SIZE == writer.bytes_written  # header on disk at once

        writer.write(payload[:CHUNK_SIZE])  # exactly one chunk: held back, it might be the last
        assert path.stat().st_size == head + NONCE_SIZE and writer.chunks_written == 0
        writer.write(payload[CHUNK_SIZE : CHUNK_SIZE + 1])  # one byte beyond it: chunk 0 goes out
        assert path.stat().st_size == head + NONCE_SIZE + SEALED_CHUNK_SIZE
        assert (writer.chunks_written, writer.plaintext_bytes, writer.tell()) == (
            1,
            CHUNK_SIZE + 1,
            CHUNK_SIZE + 1,
        )

        # What a crash now would leave: the sealed chunk, salvageable; the buffered byte lost.
        on_disk = path.read_bytes()
        assert MARKER not in on_disk and EBML_MAGIC not in on_disk
        check_truncated(path, keys["practice"], payload, 1)

        writer.write(payload[CHUNK_SIZE + 1 :])  # several chunks in one write()
        assert writer.chunks_written == (len(payload) - 1) // CHUNK_SIZE
        writer.sync()
        writer.close()
        writer.close()  # idempotent
        assert writer.closed and writer.bytes_written == path.stat().st_size
        with pytest.raises(ValueError, match="closed"):
            writer.write(b"more")
    assert stock_decrypt(path, keys["practice"].file) == payload


def test_no_plaintext_reaches_the_file(tmp_path: Path, keys: dict[str, Key]) -> None:
    filler = payload_of(5000)
    payload = b"".join(MARKER + EBML_MAGIC + filler[: i * 37 % 5000] for i in range(200))
    # Markers straddling chunk boundaries too.
    for boundary in (CHUNK_SIZE, 2 * CHUNK_SIZE):
        payload = payload[: boundary - 10] + MARKER + EBML_MAGIC + payload[boundary + 19 :]
    assert payload.count(MARKER) > 200
    path = write_ours(
        tmp_path / "x.age", payload, [keys["practice"].recipient, keys["breakglass"].recipient], 777
    )
    data = path.read_bytes()
    assert MARKER not in data and EBML_MAGIC not in data and filler[:64] not in data
    assert stock_decrypt(path, keys["breakglass"].file) == payload


def test_leaving_the_context_on_an_exception_aborts(tmp_path: Path, keys: dict[str, Key]) -> None:
    payload = payload_of(CHUNK_SIZE * 2 + 10)
    path = tmp_path / "x.age"
    with path.open("wb") as handle, pytest.raises(RuntimeError):
        with EncryptingWriter(handle, [keys["practice"].recipient]) as writer:
            writer.write(payload)
            raise RuntimeError("disk trouble")
    assert writer.closed
    check_truncated(path, keys["practice"], payload, 2)  # no final chunk: never passes as COMPLETE


def test_with_an_executor_write_leaves_the_disk_to_it(tmp_path: Path, keys: dict[str, Key]) -> None:
    """For callers on an event loop: write() only cuts chunks; the executor seals, writes and
    fsyncs them in order, and close() (run there too) finishes the file."""
    payload = payload_of(3 * CHUNK_SIZE + 100)
    path = tmp_path / "x.age"
    reported: list[BaseException] = []
    release = threading.Event()
    with ThreadPoolExecutor(max_workers=1) as executor, path.open("wb") as handle:
        executor.submit(release.wait)  # the writer's thread is busy elsewhere for now
        writer = EncryptingWriter(handle, [keys["practice"].recipient], executor, reported.append)
        for start in range(0, len(payload), 5000):
            writer.write(payload[start : start + 5000])
        # write() returned without touching the file: not even the header is there yet.
        assert path.stat().st_size == 0
        assert (writer.chunks_cut, writer.chunks_written, writer.buffered) == (3, 0, 100)
        release.set()
        executor.submit(writer.close).result()
        assert (writer.chunks_written, writer.bytes_written) == (4, path.stat().st_size)
    assert reported == []
    assert stock_decrypt(path, keys["practice"].file) == payload


def test_with_an_executor_a_disk_error_fails_the_writer_at_once(keys: dict[str, Key]) -> None:
    reported: list[BaseException] = []
    with ThreadPoolExecutor(max_workers=1) as executor, open("/dev/full", "wb", buffering=0) as handle:
        writer = EncryptingWriter(handle, [keys["practice"].recipient], executor, reported.append)
        executor.submit(lambda: None).result()  # the header's write has been tried
        [error] = reported
        assert isinstance(error, OSError) and error.errno == errno.ENOSPC
        assert writer.error is error
        with pytest.raises(ValueError, match="No space left on device"):
            writer.write(b"more")
        executor.submit(writer.close).result()  # writes nothing more: the file stays TRUNCATED
    assert reported == [error]


# --- PyAV muxes WebM straight into the writer -------------------------------------------


def mux_webm(writer: EncryptingWriter, frames: int, size: tuple[int, int], noise: bool) -> int:
    """VP8 video and Opus audio muxed into the writer; returns the number of video packets."""
    width, height = size
    container = av.open(writer, "w", format="webm")
    video = container.add_stream("libvpx", rate=30)
    video.width, video.height, video.pix_fmt = width, height, "yuv420p"
    video.bit_rate = 2_000_000
    audio = container.add_stream("libopus", rate=48000)
    video_packets = 0
    for index in range(frames):
        frame = av.VideoFrame(width, height, "yuv420p")
        for plane in frame.planes:
            plane.update(
                os.urandom(plane.buffer_size) if noise else bytes([index * 4 % 256]) * plane.buffer_size
            )
        frame.pts = index
        for packet in video.encode(frame):
            container.mux(packet)
            video_packets += 1
    for index in range(frames * 1600 // 960):
        sound = av.AudioFrame(format="s16", layout="mono", samples=960)
        sound.planes[0].update(bytes(sound.planes[0].buffer_size))
        sound.sample_rate, sound.pts = 48000, index * 960
        for packet in audio.encode(sound):
            container.mux(packet)
    for stream in (video, audio):
        for packet in stream.encode():
            container.mux(packet)
            video_packets += stream is video
    container.close()
    assert not writer.closed  # PyAV leaves custom file objects open
    writer.close()
    return video_packets


def probe(path: Path) -> dict[str, tuple[str, int, float]]:
    """codec, packet count and last packet time per stream type, as PyAV demuxes them."""
    seen: dict[str, tuple[str, int, float]] = {}
    with av.open(str(path)) as container:
        for packet in container.demux():
            if packet.pts is None:
                continue
            kind = packet.stream.type
            _, count, last = seen.get(kind, (packet.stream.codec_context.name, 0, 0.0))
            seen[kind] = (
                packet.stream.codec_context.name,
                count + 1,
                max(last, float(packet.pts * packet.time_base)),
            )
    return seen


def test_pyav_muxes_webm_into_the_writer(tmp_path: Path, keys: dict[str, Key]) -> None:
    path = tmp_path / "rec.age"
    with path.open("wb") as handle:
        writer = EncryptingWriter(handle, [keys["practice"].recipient])
        video_packets = mux_webm(writer, frames=60, size=(64, 48), noise=False)
    assert EBML_MAGIC not in path.read_bytes()
    webm = tmp_path / "rec.webm"
    webm.write_bytes(stock_decrypt(path, keys["practice"].file))
    assert webm.read_bytes().startswith(EBML_MAGIC)
    seen = probe(webm)
    assert seen["video"][:2] == ("vp8", video_packets)
    assert seen["audio"][0] == "opus"
    assert 1.9 <= seen["video"][2] <= 2.1 and 1.9 <= seen["audio"][2] <= 2.1
    if shutil.which("ffprobe"):
        done = subprocess.run(
            ["ffprobe", "-v", "error", "-show_entries", "stream=codec_name", "-of", "csv=p=0", str(webm)],
            check=True,
            capture_output=True,
            text=True,
        )
        assert sorted(done.stdout.split()) == ["opus", "vp8"]


def test_salvaged_prefix_of_a_cut_recording_demuxes(tmp_path: Path, keys: dict[str, Key]) -> None:
    path = tmp_path / "rec.age"
    with path.open("wb") as handle:
        writer = EncryptingWriter(handle, [keys["practice"].recipient])
        mux_webm(writer, frames=45, size=(160, 120), noise=True)
    assert writer.chunks_written >= 4
    data = path.read_bytes()
    cut_at = header_size(data) + NONCE_SIZE + 3 * SEALED_CHUNK_SIZE + 5000  # mid-chunk, like a crash
    damaged = variant(path, data[:cut_at], "crashed")
    result, prefix = decrypt_ours(damaged, keys["practice"], salvage=True)
    assert result.status is Status.TRUNCATED and len(prefix) == 3 * CHUNK_SIZE
    webm = tmp_path / "salvaged.webm"
    webm.write_bytes(prefix)
    seen = probe(webm)
    assert seen["video"][0] == "vp8" and seen["video"][1] > 5 and seen["video"][2] > 0.1
