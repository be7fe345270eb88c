"""Real Caddy (Debian's package) in front of a live vsession on loopback, running deploy/Caddyfile.

The test's own Caddyfile holds only global options, then imports deploy/Caddyfile, so the file under
test is the shipped one: certificates from Caddy's local CA (`local_certs`, which is `tls internal`
for every site), test ports, loopback only, storage in the test's folder, no admin endpoint, and the
machine's trust store left alone. Python clients trust Caddy's root from that storage; Chromium is
started with --ignore-certificate-errors.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.live_server import LiveServer, start_server
from tests.support.paths import REPO

DEPLOY_CADDYFILE = REPO / "deploy" / "Caddyfile"
DOMAIN = "localhost"
PATIENCE = 30.0  # seconds for Caddy to serve its first certificate; only so a broken start fails

TEST_OPTIONS = """{{
	admin off
	local_certs
	skip_install_trust
	default_bind 127.0.0.1
	http_port {http_port}
	https_port {https_port}
	storage file_system {storage}
}}
import {deploy}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Caddy:
    origin: str  # https://localhost:PORT, what browsers use and vsession's public_origin
    port: int
    root_cert: Path  # Caddy's local CA, in its storage
    log: Path  # Caddy's own log (stderr): what it writes with no `log` directive
    process: subprocess.Popen[bytes]

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.root_cert))

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_caddy(work: Path, upstream: str, https_port: int) -> Caddy:
    """Caddy on 127.0.0.1:https_port for DOMAIN, proxying to `upstream` (HOST:PORT, plain HTTP)."""
    work.mkdir(parents=True, exist_ok=True)
    storage = work / "storage"
    config = work / "Caddyfile"
    config.write_text(
        TEST_OPTIONS.format(
            http_port=free_port(), https_port=https_port, storage=storage, deploy=DEPLOY_CADDYFILE
        )
    )
    log = work / "caddy.log"
    # Its home and config folders too (Caddy autosaves its config, smallstep keeps a folder in $HOME).
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(work / "home"),
        "XDG_CONFIG_HOME": str(work / "config"),
        "XDG_DATA_HOME": str(work / "data"),
        "VSESSION_DOMAIN": DOMAIN,
        "VSESSION_UPSTREAM": upstream,
    }
    process = subprocess.Popen(
        ["caddy", "run", "--adapter", "caddyfile", "--config", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=log.open("wb"),
        env=env,
    )
    caddy = Caddy(
        f"https://{DOMAIN}:{https_port}",
        https_port,
        storage / "pki" / "authorities" / "local" / "root.crt",
        log,
        process,
    )
    try:
        _until_serving(caddy)
    except BaseException:
        caddy.stop()
        raise
    return caddy


def _until_serving(caddy: Caddy) -> None:
    deadline = time.monotonic() + PATIENCE
    while True:
        if caddy.process.poll() is not None:
            raise RuntimeError(f"caddy exited with {caddy.process.returncode}: {caddy.log.read_text()}")
        try:
            context = caddy.ssl_context()
            with socket.create_connection(("127.0.0.1", caddy.port), timeout=5) as raw:
                with context.wrap_socket(raw, server_hostname=DOMAIN):
                    return
        except (OSError, ssl.SSLError) as error:
            if time.monotonic() > deadline:
                raise RuntimeError(f"caddy never served TLS: {error}: {caddy.log.read_text()}") from error
        time.sleep(0.2)


@dataclass
class Proxied:
    """vsession (plain HTTP on loopback) and Caddy in front of it. The server's `url` is Caddy's
    origin, its public_origin, as `serve` prints it; `direct` is where vsession itself listens."""

    server: LiveServer
    direct: str
    caddy: Caddy


@contextlib.contextmanager
def behind_caddy(work: Path, *settings: str, log: Path | None = None) -> Iterator[Proxied]:
    """A live vsession whose public_origin is Caddy's, with `settings` (TOML lines) added, and Caddy
    in front of it. `log` collects vsession's structured log."""
    https_port, port = free_port(), free_port()
    config = work / "vsession.toml"
    lines = ["ice_loopback = true", f'public_origin = "https://{DOMAIN}:{https_port}"', *settings]
    config.write_text("\n".join(lines) + "\n")
    # A port of our choosing (the last --port wins): with public_origin set, serve prints that.
    server = start_server(work / "data", "--config", str(config), "--port", str(port), log=log)
    try:
        caddy = start_caddy(work / "caddy", f"127.0.0.1:{port}", https_port)
        try:
            yield Proxied(server, f"http://127.0.0.1:{port}", caddy)
        finally:
            caddy.stop()
    finally:
        server.stop()


@dataclass
class Answer:
    status: int
    headers: http.client.HTTPMessage
    body: Any


def request_from(
    source: str,
    url: str,
    path: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
    context: ssl.SSLContext | None = None,
) -> Answer:
    """One request from the loopback address `source` (all of 127/8 is this machine), so a test can
    be several clients. JSON in and out; `context` for https."""
    scheme, _, hostport = url.partition("://")
    host, _, port = hostport.rpartition(":")
    connection: http.client.HTTPConnection
    if scheme == "https":
        connection = http.client.HTTPSConnection(host, int(port), source_address=(source, 0), context=context)
    else:
        connection = http.client.HTTPConnection(host, int(port), source_address=(source, 0))
    all_headers = {"Accept": "application/json", **(headers or {})}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        all_headers["Content-Type"] = "application/json"
    try:
        connection.request("POST" if data is not None else "GET", path, body=data, headers=all_headers)
        response = connection.getresponse()
        raw = response.read()
    finally:
        connection.close()
    is_json = response.headers.get_content_type() == "application/json"
    return Answer(response.status, response.headers, json.loads(raw) if is_json else raw.decode())
