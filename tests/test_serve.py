"""A real `vsession serve` process: the URL line, /healthz, graceful stop, TLS."""

import json
import signal
import socket
import ssl
import stat
import subprocess
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.support.cli import run_vsession
from vsession.tls import ensure_self_signed

REPO = Path(__file__).resolve().parent.parent


def get(url: str, context: ssl.SSLContext | None = None):
    with urllib.request.urlopen(url, timeout=10, context=context) as response:
        return response.status, dict(response.headers), response.read()


def trusting(cert: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(cert))


def test_serve_prints_its_url_and_answers_healthz(live_server) -> None:
    url = urlsplit(live_server.url)
    assert url.scheme == "http"
    assert url.hostname == "127.0.0.1"
    assert url.port not in (None, 0)  # --port 0 resolved to the real port
    status, headers, body = get(live_server.url + "/healthz")
    assert status == 200
    assert json.loads(body) == {"status": "ok"}
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert "Strict-Transport-Security" not in headers
    assert (live_server.data_dir / "vsession.sqlite3").is_file()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_stops_the_server_gracefully(servers, tmp_path: Path, sig: signal.Signals) -> None:
    server = servers(tmp_path / "data")
    assert get(server.url + "/healthz")[0] == 200
    server.process.send_signal(sig)
    assert server.process.wait(timeout=20) == 0
    # SQLite removes the write-ahead log when the last connection closes cleanly,
    # so its absence shows the shutdown closed the database instead of abandoning it.
    assert not (tmp_path / "data" / "vsession.sqlite3-wal").exists()
    with pytest.raises(OSError):
        get(server.url + "/healthz")


def test_self_signed_https_with_hsts_and_reused_cert(servers, tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = servers(data, "--self-signed")
    assert server.url.startswith("https://127.0.0.1:")
    cert, key = data / "tls" / "self-signed.crt", data / "tls" / "self-signed.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600

    status, headers, body = get(server.url + "/healthz", trusting(cert))
    assert status == 200
    assert json.loads(body) == {"status": "ok"}
    assert headers["Strict-Transport-Security"].startswith("max-age=")

    # Without trusting that cert, a client refuses the connection.
    with pytest.raises(OSError):
        get(server.url + "/healthz", ssl.create_default_context())

    first = cert.read_bytes()
    assert server.stop() == 0
    again = servers(data, "--self-signed")
    assert cert.read_bytes() == first
    assert served_cert(again.url) == ssl.PEM_cert_to_DER_cert(first.decode())
    assert get(again.url + "/healthz", trusting(cert))[0] == 200


def served_cert(url: str) -> bytes:
    parts = urlsplit(url)
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with (
        socket.create_connection((parts.hostname, parts.port), timeout=10) as sock,
        context.wrap_socket(sock, server_hostname=parts.hostname) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return der


def test_serve_with_a_given_cert_and_key(servers, tmp_path: Path) -> None:
    cert, key = ensure_self_signed(tmp_path / "pki", "127.0.0.1")
    server = servers(tmp_path / "data", "--tls-cert", str(cert), "--tls-key", str(key))
    assert server.url.startswith("https://")
    status, headers, _ = get(server.url + "/healthz", trusting(cert))
    assert status == 200
    assert "Strict-Transport-Security" in headers
    assert not (tmp_path / "data" / "tls").exists()  # no self-signed pair made


def test_non_loopback_without_tls_exits_2(tmp_path: Path) -> None:
    result = run_vsession("serve", "--data-dir", tmp_path / "data", "--port", "0", "--host", "0.0.0.0")
    assert result.returncode == 2
    assert result.stdout == ""  # no URL: it never listened
    assert len(result.stderr.splitlines()) == 1
    assert "'host'" in result.stderr


def test_a_port_in_use_exits_2_with_one_line(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = str(taken.getsockname()[1])
        result = run_vsession("serve", "--data-dir", tmp_path / "data", "--port", port)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    (line,) = [line for line in result.stderr.splitlines() if not line.startswith("{")]  # JSON: the logs
    assert line == f"vsession: cannot listen on 127.0.0.1:{port} (host/port): Address already in use"


def test_an_unreadable_key_folder_stops_start_up_with_one_line(tmp_path: Path) -> None:
    (tmp_path / "data" / "keys" / "totp-secrets.key").mkdir(parents=True)  # a folder, not a key file
    result = run_vsession("serve", "--data-dir", tmp_path / "data", "--port", "0", timeout=30)
    assert result.returncode == 2
    assert result.stdout.count("\n") == 1  # the recording line only: no URL, it never served
    (line,) = [line for line in result.stderr.splitlines() if not line.startswith("{")]
    assert line.startswith("vsession: cannot start: ") and "totp-secrets.key" in line


def stock_key(folder: Path) -> tuple[Path, str]:
    """An identity file from stock age-keygen and its recipient, as a practice would make them."""
    identity = folder / "practice.txt"
    subprocess.run(["age-keygen", "-o", str(identity)], check=True, capture_output=True)
    derived = subprocess.run(["age-keygen", "-y", str(identity)], check=True, capture_output=True, text=True)
    return identity, derived.stdout.strip()


def test_serve_says_recording_is_disabled_without_a_recipient(live_server) -> None:
    assert "recording: disabled (no recording_recipient)" in live_server.lines


@pytest.mark.parametrize("given_by", ["toml", "environment", "flag"])
def test_serve_prints_the_recipient_fingerprint_the_practice_can_check(
    servers, tmp_path: Path, given_by: str
) -> None:
    """The three ways the README gives to set the key, each read at start-up."""
    identity, recipient = stock_key(tmp_path)
    config = tmp_path / "vsession.toml"
    config.write_text(f'recording_recipient = "{recipient}"\n' if given_by == "toml" else "")
    environment = {"VSESSION_RECORDING_RECIPIENT": recipient} if given_by == "environment" else {}
    flag = ["--recording-recipient", recipient] if given_by == "flag" else []
    server = servers(tmp_path / "data", "--config", str(config), *flag, environment=environment)
    # The README's check, run on the practice's own computer with stock tools.
    expected = subprocess.run(
        f"age-keygen -y '{identity}' | sha256sum | cut -c1-16",
        shell=True,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    assert (
        f"recording: enabled, recipient {recipient[:8]}…{recipient[-4:]} (sha256 {expected})" in server.lines
    )
    assert get(server.url + "/healthz")[0] == 200


def test_a_bad_recipient_exits_2_with_one_line_and_no_secret(tmp_path: Path) -> None:
    identity, recipient = stock_key(tmp_path)
    [secret] = [x for x in identity.read_text().splitlines() if x.startswith("AGE-SECRET-KEY-1")]
    broken = recipient[:30] + ("q" if recipient[30] != "q" else "p") + recipient[31:]
    for value, problem in ((broken, "checksum"), (secret, "secret key")):
        result = run_vsession(
            "serve",
            "--data-dir",
            tmp_path / "data",
            "--port",
            "0",
            env={"VSESSION_RECORDING_RECIPIENT": value},
        )
        assert result.returncode == 2
        assert result.stdout == ""
        [line] = result.stderr.splitlines()
        assert line.startswith("vsession: invalid setting 'recording_recipient': ")
        assert problem in line
        assert value not in line and value[10:30] not in line
        assert not (tmp_path / "data").exists()
