"""Fixtures for the doctor's tests: certificates made with `cryptography` as a CA or certbot would, and a fake
NTP server on loopback whose clock is off by a chosen amount."""

from __future__ import annotations

import datetime
import ipaddress
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from vsession.doctor.clock import NTP_EPOCH


def _name(text: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, text)])


def _san(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


@pytest.fixture
def keygen() -> Callable[[Path], str]:
    """keygen(path): a real identity file, as the practice makes it with stock age-keygen; returns its
    recipient."""

    def make(path: Path) -> str:
        path.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["age-keygen", "-o", str(path)], check=True, capture_output=True)
        done = subprocess.run(["age-keygen", "-y", str(path)], check=True, capture_output=True, text=True)
        return done.stdout.strip()

    return make


@pytest.fixture
def make_cert(tmp_path: Path) -> Callable[..., tuple[Path, Path]]:
    """make_cert(host, not_before, not_after, self_signed=False, pass_phrase=None) -> (cert, key) files.
    Not self-signed: issued by a throwaway CA; the file holds the chain, leaf first, as fullchain.pem."""
    counter = iter(range(1000))

    def make(
        host: str,
        not_before: datetime.datetime,
        not_after: datetime.datetime,
        self_signed: bool = False,
        pass_phrase: bytes | None = None,
    ) -> tuple[Path, Path]:
        key = ec.generate_private_key(ec.SECP256R1())
        issuer_key, issuer = (key, _name(host))
        if not self_signed:
            issuer_key, issuer = ec.generate_private_key(ec.SECP256R1()), _name("Test CA")
        leaf = (
            x509.CertificateBuilder()
            .subject_name(_name(host))
            .issuer_name(issuer)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(x509.SubjectAlternativeName([_san(host)]), critical=False)
            .sign(issuer_key, hashes.SHA256())
        )
        pem = leaf.public_bytes(serialization.Encoding.PEM)
        if not self_signed:
            ca = (
                x509.CertificateBuilder()
                .subject_name(issuer)
                .issuer_name(issuer)
                .public_key(issuer_key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(not_before)
                .not_valid_after(not_after + datetime.timedelta(days=365))
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .sign(issuer_key, hashes.SHA256())
            )
            pem += ca.public_bytes(serialization.Encoding.PEM)
        encryption: serialization.KeySerializationEncryption = serialization.NoEncryption()
        if pass_phrase:
            encryption = serialization.BestAvailableEncryption(pass_phrase)
        n = next(counter)
        cert_path, key_path = tmp_path / f"cert{n}.pem", tmp_path / f"key{n}.pem"
        cert_path.write_bytes(pem)
        key_path.write_bytes(
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
        )
        return cert_path, key_path

    return make


@pytest.fixture
def fake_ntp() -> Iterator[Callable[..., str]]:
    """fake_ntp(skew, leap=0) -> "127.0.0.1:PORT": answers SNTP requests with its clock `skew` seconds
    off ours (leap 3: "I am not synchronised"), from a thread, until the test ends."""
    stop = threading.Event()
    threads: list[threading.Thread] = []

    def serve(sock: socket.socket, skew: float, leap: int) -> None:
        with closing(sock):
            while not stop.is_set():
                try:
                    data, addr = sock.recvfrom(512)
                except TimeoutError:
                    continue
                now = time.time() + skew + NTP_EPOCH
                stamp = struct.pack("!II", int(now), int((now % 1) * 2**32))
                head = bytes([(leap << 6) | (4 << 3) | 4, 2, 6, 0xEC]) + bytes(20)
                sock.sendto(head + data[40:48] + stamp + stamp, addr)  # echoes the request's cookie

    def start(skew: float, leap: int = 0) -> str:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(0.1)
        thread = threading.Thread(target=serve, args=(sock, skew, leap), daemon=True)
        thread.start()
        threads.append(thread)
        return f"127.0.0.1:{sock.getsockname()[1]}"

    yield start
    stop.set()
    for thread in threads:
        thread.join()
