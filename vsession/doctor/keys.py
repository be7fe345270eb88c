"""The recording key: a valid recipient on the server, and its identity (the secret half) nowhere on it."""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import bech32
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from vsession.doctor.findings import Finding, ok, problem, warn
from vsession.recording.recipients import describe, parse_recipient, recipient_text

RECIPIENT = "recording key"
IDENTITIES = "identity files"
# A whole age X25519 identity: the prefix, then 58 upper-case Bech32 characters (32 bytes and a checksum).
IDENTITY = re.compile(rb"AGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58}")
# Bounds, so the scan takes seconds even from / : identity files are ~200 bytes, so larger files
# (recordings, the DB) are not read; the walk stops at a depth, a count and a total read.
MAX_BYTES = 256 << 10
MAX_FILES = 10_000
MAX_TOTAL = 256 << 20
MAX_DEPTH = 4
SKIP_NAMES = frozenset({".git", ".venv", "node_modules", "__pycache__"})
SKIP_PATHS = frozenset({Path("/proc"), Path("/sys"), Path("/dev"), Path("/run")})


def check_recipient(text: str) -> Finding:
    if not text:
        return warn(
            RECIPIENT,
            "recording is off (no recording_recipient)",
            "if the practice records, make a key off the server (`age-keygen -o key.txt` on the practice's "
            "computer) and set recording_recipient to the 'age1…' line it prints",
        )
    try:
        key = parse_recipient(text)
    except ValueError as exc:
        return problem(
            RECIPIENT, f"recording_recipient {exc}", "set recording_recipient to the 'age1…' public key"
        )
    return ok(RECIPIENT, f"recording_recipient is {describe(key)}")


@dataclass
class Scan:
    found: list[Path] = field(default_factory=list)
    files: int = 0
    unreadable: int = 0
    stopped: bool = False  # a bound was reached


def check_identities(roots: Iterable[Path], recipients: Iterable[str] = ()) -> Finding:
    folders = _distinct(roots)
    scan = scan_identities(folders)
    where = ", ".join(str(f) for f in folders)
    if scan.found:
        mine = {_recipient_of(path) for path in scan.found} & set(recipients)
        whose = " (the secret key of this server's recording_recipient)" if mine else ""
        names = ", ".join(str(p) for p in scan.found[:5]) + (" …" if len(scan.found) > 5 else "")
        return problem(
            IDENTITIES,
            f"an age identity (AGE-SECRET-KEY-1…){whose} is on this server: {names}",
            "whoever copies this disk can open every recording: move it to the practice's own computer "
            "or password manager, then `shred -u` it here",
        )
    counted = f"none in {scan.files} file{'' if scan.files == 1 else 's'} under {where}"
    if scan.stopped:
        counted += f" (stopped there: it reads at most {MAX_FILES} files, {MAX_TOTAL >> 20} MB)"
    if scan.unreadable:
        return warn(
            IDENTITIES,
            f"{counted}, but {scan.unreadable} files could not be read",
            "run doctor as root or as the user vsession runs as",
        )
    return ok(IDENTITIES, counted)


def scan_identities(roots: Iterable[Path]) -> Scan:
    scan = Scan()
    for path in _files(roots, scan):
        try:
            with open(path, "rb") as handle:
                data = handle.read(MAX_BYTES)
        except OSError:
            scan.unreadable += 1
            continue
        scan.files += 1
        if IDENTITY.search(data):
            scan.found.append(path)
    return scan


def _files(roots: Iterable[Path], scan: Scan) -> Iterator[Path]:
    seen = total = 0
    for root in roots:
        for folder, dirs, names in os.walk(root, onerror=lambda _: None):
            depth = len(Path(folder).relative_to(root).parts)
            dirs[:] = [] if depth >= MAX_DEPTH else sorted(d for d in dirs if _walk_into(Path(folder, d)))
            for name in sorted(names):
                path = Path(folder, name)
                try:
                    info = path.stat()
                except OSError:
                    continue
                # Only regular files: a FIFO or device would block or never end.
                if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_BYTES:
                    continue
                if seen >= MAX_FILES or total >= MAX_TOTAL:
                    scan.stopped = True
                    return
                seen += 1
                total += info.st_size
                yield path


def _walk_into(folder: Path) -> bool:
    return folder.name not in SKIP_NAMES and folder not in SKIP_PATHS


def _distinct(roots: Iterable[Path]) -> list[Path]:
    """Existing folders, each once, none inside another (it would be scanned twice)."""
    folders = sorted({r.resolve() for r in roots if r.is_dir()}, key=lambda p: len(p.parts))
    kept: list[Path] = []
    for folder in folders:
        if not any(folder.is_relative_to(k) for k in kept):
            kept.append(folder)
    return kept


def _recipient_of(path: Path) -> str:
    """The 'age1…' line of the identity in `path`, to tell whether it is this server's own key."""
    try:
        match = IDENTITY.search(path.read_bytes()[:MAX_BYTES])
    except OSError:
        return ""
    if match is None:
        return ""
    _, words = bech32.bech32_decode(match.group().decode("ascii").lower())
    raw = bech32.convertbits(words or [], 5, 8, False)
    if raw is None or len(raw) != 32:
        return ""
    return recipient_text(X25519PrivateKey.from_private_bytes(bytes(raw)).public_key())
