"""Debian's Janus Gateway (package `janus`), started for one benchmark step on loopback, with the
configuration kept in scripts/janus/. Nothing is installed here: without /usr/bin/janus (and gcc,
for the loopback shim) the bench says so and measures vsession alone.

Janus skips loopback interfaces when it gathers ICE candidates. scripts/janus/loopback_ifaddrs.c,
compiled once per run into the run's temporary folder and preloaded, clears IFF_LOOPBACK in what
getifaddrs() returns, and janus.jcfg enforces "lo", so Janus offers 127.0.0.1 as vsession does
with ice_loopback (simpler than a network namespace, and needs no privileges)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

CONFIG = Path(__file__).resolve().parent / "janus"
SHIM = CONFIG / "loopback_ifaddrs.c"


class JanusUnavailable(Exception):
    """No janus (or no gcc for the shim) on this machine."""


def build_shim(workdir: Path) -> Path:
    """Compile the loopback shim; the path of the shared object."""
    janus, gcc = shutil.which("janus"), shutil.which("gcc")
    if janus is None or gcc is None:
        missing = " and ".join(n for n, p in (("janus", janus), ("gcc", gcc)) if p is None)
        raise JanusUnavailable(f"{missing} not found (Debian: apt-get install janus gcc)")
    workdir.mkdir(parents=True, exist_ok=True)
    shim = workdir / "loopback_ifaddrs.so"
    subprocess.run([gcc, "-shared", "-fPIC", "-O2", "-o", str(shim), str(SHIM), "-ldl"], check=True)
    return shim


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class JanusServer:
    process: subprocess.Popen[bytes]
    url: str  # the HTTP API's base
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> int:
        if self.alive():
            self.process.send_signal(signal.SIGTERM)  # Janus leaves cleanly on SIGTERM
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        return self.process.wait()


def start_janus(workdir: Path, shim: Path, nice: int) -> JanusServer:
    """Janus with scripts/janus/'s configuration on a free loopback port, at the given niceness."""
    configs = workdir / "configs"
    configs.mkdir(parents=True)
    port = free_port()
    for source in CONFIG.glob("*.jcfg"):
        (configs / source.name).write_text(source.read_text().replace("@HTTP_PORT@", str(port)))
    command = ["janus", "-C", str(configs / "janus.jcfg"), "-F", str(configs)]
    if nice:
        command = ["nice", "-n", str(nice), *command]
    log = workdir / "janus.log"
    env = {**os.environ, "LD_PRELOAD": str(shim)}
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    server = JanusServer(process, f"http://127.0.0.1:{port}/janus", log)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if not server.alive():
            break
        try:
            with urllib.request.urlopen(server.url + "/info", timeout=2) as response:
                if response.status == 200:
                    return server
        except (urllib.error.URLError, OSError):
            time.sleep(0.2)
    server.stop()
    tail = "\n  ".join(log.read_text(errors="replace").splitlines()[-15:])
    raise RuntimeError(f"janus did not answer on {server.url}/info\njanus log tail:\n  {tail}")
