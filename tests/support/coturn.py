"""Real coturn (Debian's `turnserver`) on loopback, with the shipped deploy/turnserver.conf.

    with running_coturn(tmp_path) as turn:
        turn.url     # "turn:127.0.0.1:PORT", for ice_servers
        turn.secret  # the static auth secret it runs with, for turn_secret
        turn.log()   # what it printed so far, for a failing test's message

It listens on 127.0.0.1 only, on free ports, runs in the foreground (no daemon) with its pid file and
database in `folder`, and stops when the block ends. The test-only flags let it relay to loopback
peers, which the shipped file denies; everything else is the production file as is.

With `tls=(cert, key)` it also takes TURN over TLS (turn.turns_url), set up as the file's how-to says:
`no-tls` deleted, `no-tlsv1` and `no-tlsv1_1` uncommented, tls-listening-port, cert and pkey given.
"""

from __future__ import annotations

import os
import random
import secrets
import signal
import socket
import struct
import subprocess
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.support.paths import REPO

CONFIG = REPO / "deploy" / "turnserver.conf"
HOST = "127.0.0.1"
RELAY_PORTS = 16  # one relay port per allocation: enough for a few calls
STUN_MAGIC = 0x2112A442


@dataclass(frozen=True)
class Coturn:
    url: str
    secret: str
    host: str
    port: int
    log_path: Path
    tls_port: int | None = None

    @property
    def turns_url(self) -> str | None:
        return None if self.tls_port is None else f"turns:{self.host}:{self.tls_port}?transport=tcp"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@contextmanager
def running_coturn(
    folder: Path, secret: str | None = None, tls: tuple[Path, Path] | None = None
) -> Iterator[Coturn]:
    """Start turnserver with `secret` (a fresh random one if None), wait until it answers a STUN
    binding request, yield it, and stop it afterwards. Raises RuntimeError if it never answers."""
    secret = secret or secrets.token_urlsafe(24)
    folder.mkdir(parents=True, exist_ok=True)
    config = CONFIG if tls is None else _with_tls(folder)
    problem = ""
    for attempt in range(3):  # a port taken between the check and coturn's bind: try other ports
        port = _free_block(RELAY_PORTS + 2)
        log_path = folder / f"turnserver-{attempt}.log"
        process = _start(config, folder, secret, port, log_path, tls)
        try:
            if _answers(process, port):
                tls_port = None if tls is None else port + 1
                yield Coturn(f"turn:{HOST}:{port}", secret, HOST, port, log_path, tls_port)
                return
            problem = log_path.read_text(errors="replace")[-2000:]
        finally:
            _stop(process)
    raise RuntimeError(f"turnserver did not answer on loopback:\n{problem}")


def _with_tls(folder: Path) -> Path:
    """The shipped file with TLS switched on as its how-to says (the rest goes on the command line)."""
    lines = CONFIG.read_text().splitlines()
    if "no-tls" not in lines or not {"#no-tlsv1", "#no-tlsv1_1"} <= set(lines):
        raise RuntimeError(f"{CONFIG} no longer has the lines its TLS how-to names")
    edited = [line.lstrip("#") if line in ("#no-tlsv1", "#no-tlsv1_1") else line for line in lines]
    path = folder / "turnserver-tls.conf"
    path.write_text("\n".join(line for line in edited if line != "no-tls") + "\n")
    return path


def _start(
    config: Path, folder: Path, secret: str, port: int, log_path: Path, tls: tuple[Path, Path] | None
) -> subprocess.Popen[bytes]:
    command = [
        "turnserver",
        "-c",
        str(config),
        f"--static-auth-secret={secret}",
        f"--listening-ip={HOST}",
        f"--relay-ip={HOST}",
        f"--listening-port={port}",
        f"--min-port={port + 2}",
        f"--max-port={port + 1 + RELAY_PORTS}",
        # Test only: the call's peers are on loopback, which the shipped file denies.
        "--allow-loopback-peers",
        f"--allowed-peer-ip={HOST}",
        f"--pidfile={folder / 'turnserver.pid'}",
        f"--db={folder / 'turndb'}",
    ]
    if tls is not None:
        command += [f"--tls-listening-port={port + 1}", f"--cert={tls[0]}", f"--pkey={tls[1]}"]
    with log_path.open("wb") as log:
        return subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)


def _answers(process: subprocess.Popen[bytes], port: int, timeout: float = 15.0) -> bool:
    """Whether coturn answers a STUN binding request before `timeout` (it takes well under a second)."""
    transaction = os.urandom(12)
    request = struct.pack("!HHI", 0x0001, 0, STUN_MAGIC) + transaction
    deadline = time.monotonic() + timeout
    with closing(socket.socket(socket.AF_INET, socket.SOCK_DGRAM)) as probe:
        probe.settimeout(0.2)
        while time.monotonic() < deadline and process.poll() is None:
            probe.sendto(request, (HOST, port))
            try:
                answer = probe.recv(2048)
            except (TimeoutError, ConnectionRefusedError):
                continue
            if answer[:2] == b"\x01\x01" and answer[8:20] == transaction:
                return True
    return False


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _free_block(count: int) -> int:
    """The first of `count` consecutive ports that are free now: the first for UDP and TCP (coturn
    listens on both), the second for TLS, the rest for UDP relays. Below Linux's ephemeral range
    (32768 and up), so no other test's sockets land in it by chance."""
    for _ in range(200):
        first = random.randrange(20000, 32000 - count)
        if all(_free(p, socket.SOCK_STREAM) for p in (first, first + 1)) and all(
            _free(p, socket.SOCK_DGRAM) for p in range(first, first + count)
        ):
            return first
    raise RuntimeError("no free block of loopback ports for turnserver")


def _free(port: int, kind: socket.SocketKind) -> bool:
    with closing(socket.socket(socket.AF_INET, kind)) as sock:
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True
