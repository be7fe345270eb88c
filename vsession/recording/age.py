"""The age v1 file format (https://age-encryption.org/v1) for X25519 recipients, streaming.

Why not a binding such as pyrage: the recorder has to push ciphertext to disk chunk by chunk
as media arrives and fsync it, and the reader has to tell a crash (TRUNCATED, with an
authenticated prefix to salvage) from a modification (TAMPERED). Both need control over the
STREAM chunks, which whole-file APIs do not give. Files written here decrypt with the stock
`age` tool, and files made by `age -r`/`age -R` read here (tests/recording/test_age.py).

Layout of a file:

    age-encryption.org/v1
    -> X25519 <base64 ephemeral share>
    <base64 wrapped file key, 64 columns per line>
    --- <base64 HMAC of the header up to and including "---">
    <16-byte nonce><STREAM payload: 64 KiB chunks, each ChaCha20-Poly1305 sealed>

Verdicts of `verify` and `decrypt` (the rule for the last piece of the file is the subtle part):

- COMPLETE: the header MAC verifies, every chunk authenticates, and the last one carries the
  last-chunk flag with nothing after it.
- TRUNCATED: the header verifies and every chunk present authenticates as non-final, but the
  file ends before a final chunk. That includes a file ending at a chunk boundary, inside the
  payload nonce, or inside a chunk: a trailing piece SHORTER than a sealed chunk (65,552 bytes)
  that authenticates neither as final nor as non-final is what a crash in the middle of a
  chunk write leaves. A short final chunk with a flipped bit cannot be told apart from that
  cryptographically (its tag is just bytes that do not verify), so it is reported TRUNCATED
  too: never COMPLETE, and never salvaged. The same goes for any change confined to a trailing
  piece shorter than a sealed chunk, such as a few bytes appended after a short final chunk
  (where that chunk ends is only known once it authenticates).
- TAMPERED: the header is malformed or cut short, the header MAC fails, a FULL-length chunk
  fails to authenticate (a writer never leaves a full-length chunk it did not seal; chunks
  swapped or reordered land here because each chunk's nonce is its position), a non-final
  chunk is short, a final chunk is empty after data, or bytes follow the final chunk.

A file none of the given identities can open raises `NoIdentityMatches` rather than returning
TAMPERED: with X25519 a stanza for another key and a damaged stanza for ours look the same.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import dataclasses
import enum
import hmac
import os
import threading
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Self

import bech32
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

# One parser for settings and writer alike, so the writer never meets a key start-up did not check.
from vsession.recording.recipients import parse_recipient

VERSION_LINE = b"age-encryption.org/v1\n"
X25519_INFO = b"age-encryption.org/v1/X25519"
RECIPIENT_HRP = "age"
IDENTITY_HRP = "age-secret-key-"

FILE_KEY_SIZE = 16
NONCE_SIZE = 16
TAG_SIZE = 16
CHUNK_SIZE = 64 * 1024
SEALED_CHUNK_SIZE = CHUNK_SIZE + TAG_SIZE

# Generous bounds so a hostile header cannot make the reader buffer without limit, while
# still admitting large plugin stanzas (post-quantum shares run to a few KB).
_MAX_HEADER_LINE = 64 * 1024
_MAX_HEADER = 1024 * 1024
_ARMOR_BEGIN = b"-----BEGIN AGE ENCRYPTED FILE-----"
_ZERO_NONCE = bytes(12)


class Status(enum.StrEnum):
    COMPLETE = "COMPLETE"
    TRUNCATED = "TRUNCATED"
    TAMPERED = "TAMPERED"


@dataclass(frozen=True)
class Result:
    """What a file holds. `chunks` and `plaintext_bytes` count authenticated chunks only: for
    TRUNCATED they are exactly what `decrypt(..., salvage=True)` returns."""

    status: Status
    plaintext_bytes: int
    chunks: int
    detail: str
    written: int = 0  # plaintext bytes `decrypt` wrote to its output; 0 from `verify`


class AgeError(Exception):
    """A file this module cannot judge (not for us, or a variant we do not read)."""


class NoIdentityMatches(AgeError):
    pass


class UnsupportedFile(AgeError):
    pass


class _Malformed(Exception):
    """Internal: the header does not parse; reported as TAMPERED."""


# --- keys --------------------------------------------------------------------------------


def _bech32_encode(hrp: str, data: bytes) -> str:
    words = bech32.convertbits(data, 8, 5, True)
    assert words is not None  # 8-to-5 bit conversion with padding cannot fail
    return bech32.bech32_encode(hrp, words)


def _bech32_decode(text: str, hrp: str, what: str) -> bytes:
    got_hrp, words = bech32.bech32_decode(text)
    if got_hrp is None or words is None:
        raise ValueError(f"{what} is not valid bech32 (bad character, mixed case or bad checksum)")
    if got_hrp != hrp:
        raise ValueError(f"{what} has prefix {got_hrp!r}, expected {hrp!r}")
    data = bech32.convertbits(words, 5, 8, False)
    if data is None or len(data) != 32:
        raise ValueError(f"{what} does not hold a 32-byte X25519 key")
    return bytes(data)


def generate_identity() -> tuple[str, str]:
    """A new (identity "AGE-SECRET-KEY-1…", recipient "age1…") pair."""
    key = X25519PrivateKey.generate()
    identity = _bech32_encode(IDENTITY_HRP, key.private_bytes_raw()).upper()
    return identity, _recipient_string(key.public_key())


def _recipient_string(public: X25519PublicKey) -> str:
    return _bech32_encode(RECIPIENT_HRP, public.public_bytes_raw())


def parse_identity(text: str) -> X25519PrivateKey:
    """Parse one "AGE-SECRET-KEY-1…" line."""
    text = text.strip()
    if not text.upper().startswith("AGE-SECRET-KEY-1"):
        raise ValueError("an age identity starts with 'AGE-SECRET-KEY-1'")
    return X25519PrivateKey.from_private_bytes(_bech32_decode(text, IDENTITY_HRP, "the age identity"))


def read_identities(path: str | os.PathLike[str]) -> list[X25519PrivateKey]:
    """Read an identity file as `age -i` does: '#' comment lines and blank lines are skipped,
    every other line must be an X25519 identity. Errors name the line, never its content."""
    identities = []
    text = Path(path).read_text(encoding="utf-8")
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            identities.append(parse_identity(line))
        except ValueError as exc:
            raise ValueError(f"{path}, line {number}: {exc}") from None
    if not identities:
        raise ValueError(f"{path} holds no age identity (AGE-SECRET-KEY-1… line)")
    return identities


def write_identity_file(path: str | os.PathLike[str], identity: str, recipient: str) -> None:
    """Write an identity file laid out as `age-keygen -o` does, mode 0600, never overwriting
    (an overwritten identity would make every recording made for it unreadable)."""
    key = parse_identity(identity)
    if parse_recipient(recipient).public_bytes_raw() != key.public_key().public_bytes_raw():
        raise ValueError("the recipient does not belong to the identity")
    created = datetime.now().astimezone().isoformat(timespec="seconds")
    content = f"# created: {created}\n# public key: {recipient.strip()}\n{identity.strip()}\n"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(content)
        handle.flush()
        os.fsync(handle.fileno())


# --- shared pieces -----------------------------------------------------------------------


def _hkdf(ikm: bytes, salt: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(ikm)


def _b64encode(data: bytes) -> bytes:
    return base64.b64encode(data).rstrip(b"=")  # age uses unpadded standard base64


def _b64decode(text: bytes) -> bytes:
    """Strict unpadded base64. The spec requires canonical encodings and stock age refuses
    anything else; a file that one reader accepts and another refuses would be a trap."""
    try:
        data = base64.b64decode(text + b"=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise _Malformed("invalid base64") from None
    if _b64encode(data) != text:
        raise _Malformed("non-canonical base64")
    return data


@dataclass(frozen=True)
class _Stanza:
    type: str
    args: tuple[str, ...]
    body: bytes


def _encode_stanza(stanza: _Stanza) -> bytes:
    line = ("-> " + " ".join((stanza.type, *stanza.args)) + "\n").encode("ascii")
    text = _b64encode(stanza.body)
    lines = [text[i : i + 64] for i in range(0, len(text), 64)]
    # The body ends with a line shorter than 64 columns, empty if need be: that is how a
    # reader knows where it stops.
    if not lines or len(lines[-1]) == 64:
        lines.append(b"")
    return line + b"".join(part + b"\n" for part in lines)


def _header_mac(file_key: bytes, header_up_to_dashes: bytes) -> bytes:
    mac_key = _hkdf(file_key, b"", b"header")
    return hmac.new(mac_key, header_up_to_dashes, "sha256").digest()


def _encode_header(stanzas: Sequence[_Stanza], file_key: bytes) -> bytes:
    head = VERSION_LINE + b"".join(_encode_stanza(s) for s in stanzas) + b"---"
    return head + b" " + _b64encode(_header_mac(file_key, head)) + b"\n"


def _x25519_stanza(recipient: X25519PublicKey, file_key: bytes) -> _Stanza:
    ephemeral = X25519PrivateKey.generate()
    share = ephemeral.public_key().public_bytes_raw()
    shared = ephemeral.exchange(recipient)
    wrap_key = _hkdf(shared, share + recipient.public_bytes_raw(), X25519_INFO)
    body = ChaCha20Poly1305(wrap_key).encrypt(_ZERO_NONCE, file_key, None)
    return _Stanza("X25519", (_b64encode(share).decode("ascii"),), body)


def _payload_aead(file_key: bytes, nonce: bytes) -> ChaCha20Poly1305:
    return ChaCha20Poly1305(_hkdf(file_key, nonce, b"payload"))


def _chunk_nonce(counter: int, last: bool) -> bytes:
    # 11-byte big-endian chunk number, then the last-chunk flag: a chunk cannot be moved,
    # and the end of the file cannot be faked by dropping chunks.
    return counter.to_bytes(11, "big") + (b"\x01" if last else b"\x00")


# --- writing -----------------------------------------------------------------------------


class EncryptingWriter:
    """Streams an age file into `fileobj` (binary, opened and later closed by the caller).

    Plaintext only ever sits in this object's memory buffer. A chunk is sealed, written and
    fsynced as soon as a byte beyond it arrives; at least one byte is always held back so that
    `close()` can seal a non-empty final chunk, as the spec requires after data. A crash
    therefore loses at most the buffered part (under 64 KiB of plaintext); the file on disk
    verifies as TRUNCATED and its authenticated prefix can be salvaged.

    It is also a write-only, non-seekable file object that PyAV can mux into directly:
    `av.open(writer, "w", format="webm")`. Matroska then goes out without seeking back, so the
    file has no Duration element (like a browser's MediaRecorder output); the packets carry
    the timing. PyAV (18.1) does not close a custom file object when the container closes:
    call `close()` after `container.close()`. Used as a context manager, leaving on an
    exception calls `abort()` instead of `close()`.

    With an `executor`, for callers on an event loop, nothing here touches the disk on the
    caller's thread: `write()` only cuts full chunks off its buffer and queues them, and a job on
    the executor seals, writes and fsyncs them (the header first), in order. A failure there
    fails the writer: `on_error` gets the exception at once, in the executor's thread, and the
    next `write()` raises. `sync()`, `close()` and `abort()` write out what is queued before
    they return, so they block: call them off the event loop.
    """

    def __init__(
        self,
        fileobj: BinaryIO,
        recipients: Sequence[str],
        executor: Executor | None = None,
        on_error: Callable[[BaseException], object] | None = None,
    ) -> None:
        if not recipients:
            raise ValueError("an age file needs at least one recipient")
        keys = [parse_recipient(text) for text in recipients]
        self._file = fileobj
        self._fd = fileobj.fileno()  # fail now, not at the first fsync, if there is no real file
        # Two locks, never held together: the plaintext side (write() on the event loop, close()
        # on a thread) and the file side (chunks leave one batch at a time, in the order cut).
        self._lock = threading.Lock()
        self._emit_lock = threading.Lock()
        self._buffer = bytearray()
        self._queue: deque[bytes] = deque()  # full chunks of plaintext, cut but not yet sealed
        self._executor = executor
        self._on_error = on_error
        self._counter = 0
        self._closed = False
        self._failed: BaseException | None = None
        self.bytes_written = 0  # ciphertext bytes written to fileobj, header included
        self.plaintext_bytes = 0  # plaintext bytes accepted by write()
        self.chunks_cut = 0  # full chunks taken off the buffer: sealed, or queued to be
        self.chunks_written = 0

        file_key = os.urandom(FILE_KEY_SIZE)
        nonce = os.urandom(NONCE_SIZE)
        header = _encode_header([_x25519_stanza(key, file_key) for key in keys], file_key)
        self._aead = _payload_aead(file_key, nonce)
        del file_key  # only the derived payload key is kept
        self._header: bytes | None = header + nonce  # goes out before any chunk
        self._send()

    # The file-object surface PyAV looks at.
    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False  # STREAM chunks are sealed once; there is no going back to patch them

    def readable(self) -> bool:
        return False

    def tell(self) -> int:
        return self.plaintext_bytes

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def buffered(self) -> int:
        """Plaintext bytes in the partial chunk: held in memory until more data completes it."""
        return len(self._buffer)

    @property
    def error(self) -> BaseException | None:
        """What failed the writer (a disk error, say), or None."""
        return self._failed

    def write(self, data: bytes | bytearray | memoryview) -> int:
        with self._lock:
            self._check_open()
            size = memoryview(data).nbytes
            self._buffer += data
            self.plaintext_bytes += size
            full = (len(self._buffer) - 1) // CHUNK_SIZE  # keep >= 1 byte for the final chunk
            if full:
                with memoryview(self._buffer) as view:
                    self._queue.extend(
                        bytes(view[i * CHUNK_SIZE : (i + 1) * CHUNK_SIZE]) for i in range(full)
                    )
                del self._buffer[: full * CHUNK_SIZE]
                self.chunks_cut += full
        if full:
            self._send()
        return size

    def sync(self) -> None:
        """Write out what is queued, then flush and fsync. The partial chunk in memory cannot be
        written: STREAM allows only full chunks before the last one."""
        if self._closed:
            return
        self._drain()
        with self._emit_lock:
            try:
                self._file.flush()
                os.fsync(self._fd)
            except BaseException as exc:
                self._failed = exc
                raise

    def close(self) -> None:
        """Seal the final chunk, flush and fsync. Does not close `fileobj`. Idempotent; after
        a failed write or `abort()` it writes nothing, leaving the file TRUNCATED on purpose."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            final = bytes(self._buffer)
            self._buffer.clear()
        self._drain()
        with self._emit_lock:
            if self._failed is None:
                self._emit(self._seal(memoryview(final), last=True))

    def abort(self) -> None:
        """Stop without a final chunk: buffered plaintext is dropped and the file verifies as
        TRUNCATED, with every chunk cut so far salvageable. For recorder and disk errors."""
        with self._lock:
            self._buffer.clear()
            self._closed = True
        with contextlib.suppress(Exception):  # the error that brought us here is already known
            self._drain()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def _check_open(self) -> None:
        if self._closed:
            raise ValueError("write to a closed EncryptingWriter")
        if self._failed is not None:
            raise ValueError(f"EncryptingWriter failed earlier: {self._failed!r}")

    def _send(self) -> None:
        """Have the header and the queued chunks written: here, or by a job on the executor."""
        if self._executor is None:
            self._drain()
        else:
            self._executor.submit(self._drain_reporting)

    def _drain_reporting(self) -> None:
        try:
            self._drain()
        except BaseException as exc:
            if self._on_error is not None:
                self._on_error(exc)

    def _drain(self) -> None:
        """Seal and write everything queued, in order, as one write and one fsync."""
        with self._emit_lock:
            if self._failed is not None:
                self._queue.clear()
                return
            parts = [] if self._header is None else [self._header]
            self._header = None
            try:
                while self._queue:
                    parts.append(self._seal(memoryview(self._queue.popleft()), last=False))
            except BaseException as exc:
                self._failed = exc
                raise
            if parts:
                self._emit(b"".join(parts))

    def _seal(self, plaintext: memoryview, last: bool) -> bytes:
        sealed = self._aead.encrypt(_chunk_nonce(self._counter, last), plaintext, None)
        self._counter += 1
        return sealed

    def _emit(self, data: bytes) -> None:
        try:
            with memoryview(data) as view:
                while view:  # a raw FileIO may write only part of what it is given
                    count = self._file.write(view)
                    if count is None:
                        raise BlockingIOError("non-blocking file object would block")
                    view = view[count:]
            self._file.flush()
            os.fsync(self._fd)
        except BaseException as exc:
            # The chunk counter has moved on; writing more would only produce garbage.
            self._failed = exc
            raise
        self.bytes_written += len(data)
        self.chunks_written = self._counter


# --- reading -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Header:
    stanzas: list[_Stanza]
    mac_input: bytes  # header bytes up to and including "---"
    mac: bytes
    size: int  # bytes, up to and including the MAC line's newline


def _read_line(fileobj: BinaryIO, consumed: int) -> bytes:
    line = fileobj.readline(_MAX_HEADER_LINE + 1)
    if not line.endswith(b"\n"):
        if len(line) > _MAX_HEADER_LINE:
            raise _Malformed("header line too long")
        raise _Malformed(f"the file ends inside the header (after {consumed + len(line)} bytes)")
    if consumed + len(line) > _MAX_HEADER:
        raise _Malformed("header too large")
    return line


def _read_header(fileobj: BinaryIO) -> _Header:
    first = fileobj.readline(len(_ARMOR_BEGIN) + 2)
    if first.startswith(_ARMOR_BEGIN):
        raise UnsupportedFile("ASCII-armored age file (age -a); remove the armor first")
    if first != VERSION_LINE:
        if VERSION_LINE.startswith(first):
            raise _Malformed(f"the file ends inside the header (after {len(first)} bytes)")
        raise _Malformed("not an age v1 file: the first line is not 'age-encryption.org/v1'")
    lines = [first]
    consumed = len(first)
    stanzas = []

    def next_line() -> bytes:
        nonlocal consumed
        line = _read_line(fileobj, consumed)
        lines.append(line)
        consumed += len(line)
        return line

    while True:
        line = next_line()
        if line.startswith(b"---"):
            if not line.startswith(b"--- "):
                raise _Malformed("bad MAC line")
            mac = _b64decode(line[4:-1])
            if len(mac) != 32:
                raise _Malformed("bad MAC length")
            mac_input = b"".join(lines[:-1]) + b"---"
            return _Header(stanzas, mac_input, mac, consumed)
        if not line.startswith(b"-> "):
            raise _Malformed("expected a recipient stanza or the MAC line")
        args = line[3:-1].split(b" ")
        if any(not arg or any(c < 0x21 or c > 0x7E for c in arg) for arg in args):
            raise _Malformed("bad stanza argument")
        parts = []
        while True:  # body lines are 64 columns, the last one shorter (maybe empty)
            body_line = next_line()[:-1]
            if len(body_line) > 64:
                raise _Malformed("stanza body line longer than 64 columns")
            parts.append(body_line)
            if len(body_line) < 64:
                break
        texts = [arg.decode("ascii") for arg in args]
        stanzas.append(_Stanza(texts[0], tuple(texts[1:]), _b64decode(b"".join(parts))))


def _unwrap_file_key(stanzas: list[_Stanza], identities: Sequence[X25519PrivateKey]) -> bytes:
    types = [stanza.type for stanza in stanzas]
    if "scrypt" in types:
        if len(stanzas) != 1:
            raise _Malformed("an scrypt stanza must be the only stanza")
        raise NoIdentityMatches("the file is passphrase-encrypted (scrypt); only X25519 is read here")
    ours = [stanza for stanza in stanzas if stanza.type == "X25519"]
    shares = []
    for stanza in ours:  # all checked up front, so the verdict does not depend on key order
        if len(stanza.args) != 1 or len(stanza.body) != FILE_KEY_SIZE + TAG_SIZE:
            raise _Malformed("malformed X25519 stanza")
        share = _b64decode(stanza.args[0].encode("ascii"))
        if len(share) != 32:
            raise _Malformed("malformed X25519 stanza share")
        shares.append(share)
    for identity in identities:
        own = identity.public_key().public_bytes_raw()
        for stanza, share in zip(ours, shares, strict=True):
            try:
                shared = identity.exchange(X25519PublicKey.from_public_bytes(share))
            except ValueError:  # all-zero shared secret: a low-order share nobody honest makes
                raise _Malformed("X25519 stanza with a low-order share") from None
            wrap_key = _hkdf(shared, share + own, X25519_INFO)
            try:
                return ChaCha20Poly1305(wrap_key).decrypt(_ZERO_NONCE, stanza.body, None)
            except InvalidTag:
                continue  # another recipient's stanza (unknown stanza types are skipped too)
    others = sorted({t for t in types if t != "X25519"})
    raise NoIdentityMatches(
        f"none of the {len(identities)} identities opens any of the file's {len(ours)} X25519 "
        "recipient stanzas" + (f" (other stanza types: {', '.join(others)})" if others else "")
    )


def _read_exact(fileobj: BinaryIO, size: int) -> bytes:
    parts = []
    while size:
        part = fileobj.read(size)
        if not part:
            break
        parts.append(part)
        size -= len(part)
    return b"".join(parts)


def _open_chunk(aead: ChaCha20Poly1305, counter: int, sealed: bytes, last: bool) -> bytes | None:
    if len(sealed) < TAG_SIZE:
        return None
    try:
        return aead.decrypt(_chunk_nonce(counter, last), sealed, None)
    except InvalidTag:
        return None


def _scan(
    fileobj: BinaryIO,
    identities: Sequence[X25519PrivateKey],
    sink: Callable[[bytes], object] | None = None,
    max_chunks: int | None = None,
) -> Result:
    """Judge a file, passing each authenticated chunk's plaintext to `sink` as it goes.
    Callers that must not see an unverified prefix run this twice (see `decrypt`)."""
    try:
        header = _read_header(fileobj)
        file_key = _unwrap_file_key(header.stanzas, identities)
    except _Malformed as exc:
        return Result(Status.TAMPERED, 0, 0, f"the header is malformed: {exc}")
    if not hmac.compare_digest(_header_mac(file_key, header.mac_input), header.mac):
        return Result(Status.TAMPERED, 0, 0, "the header MAC does not verify: the header was changed")
    nonce = _read_exact(fileobj, NONCE_SIZE)
    if len(nonce) < NONCE_SIZE:
        return Result(Status.TRUNCATED, 0, 0, "the file ends before the payload (no chunk present)")
    aead = _payload_aead(file_key, nonce)
    counter = total = 0

    def result(status: Status, detail: str) -> Result:
        return Result(status, total, counter, detail)

    def offset() -> int:
        return header.size + NONCE_SIZE + counter * SEALED_CHUNK_SIZE

    while True:
        if max_chunks is not None and counter >= max_chunks:
            return result(Status.TRUNCATED, f"stopped after {counter} chunks as asked")
        piece = _read_exact(fileobj, SEALED_CHUNK_SIZE)
        if not piece:
            return result(
                Status.TRUNCATED, f"the file ends after {counter} non-final chunks, without a final chunk"
            )
        if len(piece) == SEALED_CHUNK_SIZE:
            plaintext = _open_chunk(aead, counter, piece, last=False)
            if plaintext is not None:
                if sink is not None:
                    sink(plaintext)
                counter += 1
                total += len(plaintext)
                continue
            plaintext = _open_chunk(aead, counter, piece, last=True)
            if plaintext is None:
                return result(
                    Status.TAMPERED, f"chunk {counter} (a full chunk at byte {offset()}) fails authentication"
                )
            if fileobj.read(1):
                return result(Status.TAMPERED, f"data follows the final chunk {counter}")
        else:
            # A short piece can only be the final chunk, or the start of a chunk whose write
            # was cut off by a crash.
            plaintext = _open_chunk(aead, counter, piece, last=True)
            if plaintext is None:
                if _open_chunk(aead, counter, piece, last=False) is not None:
                    return result(Status.TAMPERED, f"chunk {counter} is a short non-final chunk")
                return result(
                    Status.TRUNCATED,
                    f"the file ends inside chunk {counter}: {len(piece)} of {SEALED_CHUNK_SIZE} bytes "
                    "present, which do not authenticate (a write cut short, or a damaged final chunk)",
                )
            if not plaintext and counter > 0:
                return result(Status.TAMPERED, "an empty final chunk after data (not valid age)")
        if sink is not None:
            sink(plaintext)
        counter += 1
        total += len(plaintext)
        return result(Status.COMPLETE, f"{counter} chunks, all authenticated, final chunk present")


def verify(path: str | os.PathLike[str], identities: Sequence[X25519PrivateKey]) -> Result:
    """Judge a file without writing plaintext anywhere.

    Raises NoIdentityMatches if no identity opens the file, UnsupportedFile for armored input.
    """
    with open(path, "rb") as fileobj:
        return _scan(fileobj, identities)


def decrypt(
    path: str | os.PathLike[str],
    identities: Sequence[X25519PrivateKey],
    out: BinaryIO,
    salvage: bool = False,
) -> Result:
    """Decrypt to `out`, streaming, in two passes over one open file: judge it first, then
    write. So a COMPLETE file is written whole, a TRUNCATED one only with `salvage` (exactly
    its authenticated chunks, a prefix of the original), and a TAMPERED one never: for
    those, nothing is written and the returned Result says why (`written` is 0).

    Raises AgeError if the file changes between the passes; `out` may then hold part of the
    authenticated plaintext and should be discarded.
    """
    with open(path, "rb") as fileobj:
        verdict = _scan(fileobj, identities)
        if not (verdict.status is Status.COMPLETE or (salvage and verdict.status is Status.TRUNCATED)):
            return verdict
        fileobj.seek(0)
        written = 0

        def sink(plaintext: bytes) -> None:
            nonlocal written
            out.write(plaintext)
            written += len(plaintext)

        limit = verdict.chunks if verdict.status is Status.TRUNCATED else None
        again = _scan(fileobj, identities, sink, limit)
    if (again.status, again.chunks, again.plaintext_bytes) != (
        verdict.status,
        verdict.chunks,
        verdict.plaintext_bytes,
    ):
        raise AgeError("the file changed while it was being decrypted; discard the output")
    return dataclasses.replace(verdict, written=written)
