"""The real Dockerfile, built here with buildah and run with its own command, user and environment:
/healthz and the image's HEALTHCHECK answer, two real aiortc peers hold a call through it with
media in the image's UDP range, the server runs as the image's non-root user, and SIGTERM stops
it cleanly. How the image is built and run: tests/support/image.py."""

from __future__ import annotations

import asyncio
import json
import os
import ssl
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import pytest

from tests.support import image
from tests.support.call_server import prepare_call
from tests.support.live_server import LiveServer
from tests.support.paths import REPO

# Cold (no base image, no cached layers) the build takes minutes; warm, well under one.
pytestmark = pytest.mark.slow

COLOURS = [(220, 40, 40), (40, 60, 220)]


def passwd_uid(root: Path, user: str) -> int:
    """The uid of `user` (a name or a number) in the image's own /etc/passwd."""
    if user.partition(":")[0].isdigit():
        return int(user.partition(":")[0])
    for line in (root / "etc" / "passwd").read_text().splitlines():
        fields = line.split(":")
        if fields[0] == user.partition(":")[0]:
            return int(fields[2])
    raise AssertionError(f"{user} is not in the image's /etc/passwd")


def udp_range(config: dict) -> range:
    (udp,) = [port.removesuffix("/udp") for port in config["ExposedPorts"] if port.endswith("/udp")]
    first, _, last = udp.partition("-")
    return range(int(first), int(last or first) + 1)


def start(command: list[str], log: Path, patience: float = 120) -> tuple[subprocess.Popen[str], list[str]]:
    """`buildah run` the server; returns once it printed its URL (the last line read). A server that
    neither prints it nor exits in `patience` seconds is killed, so the test fails instead of hanging;
    the limit asserts nothing about speed."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log.open("w"), text=True)
    watchdog = threading.Timer(patience, image.kill_tree, [process])
    watchdog.start()
    try:
        assert process.stdout is not None
        lines: list[str] = []
        for line in process.stdout:
            lines.append(line.rstrip("\n"))
            if line.startswith(("http://", "https://")):
                return process, lines
    finally:
        watchdog.cancel()
    process.wait()
    raise AssertionError(f"the image's server exited {process.returncode}: {lines} {log.read_text()[-3000:]}")


def test_the_image_serves_a_call_as_a_non_root_user(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    image.build()
    config = image.inspect()
    env = dict(item.split("=", 1) for item in config["Env"])
    data = Path(env["VSESSION_DATA_DIR"])
    with image.container() as box:
        uid = passwd_uid(box.root, config["User"])
        assert uid != 0
        # The image's command as is, bound to loopback on a free port (later flags win); loopback
        # ICE candidates, as every call test here has, for a host with no other interface.
        command = box.run(
            *config["Cmd"],
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            user=config["User"],
            env={"VSESSION_ICE_LOOPBACK": "true"},
        )
        process, lines = start(command, tmp_path / "server.log")
        try:
            url = lines[-1]
            assert url.startswith("https://"), "the image's command serves TLS"
            # Seen from the host: buildah's chroot isolation shares the host's PID namespace.
            pid = image.find_python(process.pid, "serve")
            # The image's /data is a volume mounted in the server's own mount namespace.
            server = LiveServer(url, Path(f"/proc/{pid}/root") / data.relative_to("/"), process, lines)
            status = image.status(pid)
            # Real, effective, saved and file-system uid: all the image's user, none root.
            assert status["Uid"].split() == [str(uid)] * 4
            assert status["CapEff"] == "0000000000000000"
            # The data folder is the image's, the server's own and closed to others.
            stat = server.data_dir.stat()
            assert (stat.st_uid, stat.st_mode & 0o777) == (uid, 0o700)
            assert (server.data_dir / "vsession.sqlite3").stat().st_uid == uid

            # Clients trust the certificate the image made, and only it: no check is switched off.
            cert = tmp_path / "server.crt"
            cert.write_bytes((server.data_dir / "tls" / "self-signed.crt").read_bytes())
            context = ssl.create_default_context(cafile=cert)
            with urllib.request.urlopen(url + "/healthz", context=context, timeout=10) as reply:
                assert reply.status == 200

            assert not (box.root / "src").exists(), "the sources stay in the build stage"
            assert not list((box.root / "opt" / "vsession" / "bin").glob("pip*")), (
                "nothing installs at run time"
            )

            test = config["Healthcheck"]["Test"]
            assert test[0] == "CMD"
            port = url.rsplit(":", 1)[1]

            def probe() -> subprocess.CompletedProcess[str]:
                command = box.run(*test[1:], user=config["User"], env={"VSESSION_PORT": port})
                return subprocess.run(command, capture_output=True, text=True, timeout=60)

            healthy = probe()
            assert healthy.returncode == 0, healthy.stderr[-2000:]

            # Sign-in, scheduling and admission over HTTPS (urllib reads SSL_CERT_FILE per request);
            # the peers in a fresh interpreter, since aiohttp reads the trust store at import.
            monkeypatch.setenv("SSL_CERT_FILE", str(cert))
            call = asyncio.run(prepare_call(server, clients=1))
            endpoints = {"t": call.therapist_ws(), "s1": call.client_ws(0)}
            peers = subprocess.run(
                [sys.executable, "-m", "tests.support.image", "call"],
                input=json.dumps({"endpoints": endpoints, "colours": COLOURS}),
                capture_output=True,
                text=True,
                timeout=300,
                cwd=REPO,
                env={**os.environ, "SSL_CERT_FILE": str(cert)},
            )
            assert peers.returncode == 0, peers.stderr[-3000:]
            received = json.loads(peers.stdout.splitlines()[-1])
            for peer, colour in zip(endpoints, COLOURS, strict=True):
                got = received[next(p for p in endpoints if p != peer)]  # what the other peer got
                assert got["from"] == peer
                assert got["camera"] >= 30 and got["microphone"] >= 50
                assert all(abs(a - b) < 40 for a, b in zip(got["colour"], colour, strict=True))
                assert got["errors"] == []
            # Media went through the ports the image exposes (VSESSION_MEDIA_PORTS, EXPOSE).
            ports = {port for peer in received.values() for port in peer["server_ports"]}
            assert ports and ports <= set(udp_range(config)), ports

            assert image.stop(pid, process) == 0, (tmp_path / "server.log").read_text()[-3000:]
            assert probe().returncode != 0, "the HEALTHCHECK notices a stopped server"
        finally:
            if process.poll() is None:
                image.kill_tree(process)
