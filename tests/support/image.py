"""The real Dockerfile, built and run with Debian's buildah (no Docker engine here, and `podman run`
cannot set rlimits): a debootstrapped base image made once and kept, a build that keeps its layers,
and the image's own command run with chroot isolation, which shares the host's network.

Run as `python -m tests.support.image call` it is the far end of a call: two aiortc peers, given
their WebSocket endpoints as JSON on stdin, in a fresh interpreter that trusts the certificate in
SSL_CERT_FILE (aiohttp reads the trust store once, at import)."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.paths import REPO

# The tests' own container storage, kept between runs (delete it for a cold build) and pruned by
# them alone; vfs, since overlay and fuse are not available here.
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "vsession-image"
RUNROOT = Path(tempfile.gettempdir()) / "vsession-image-run"
STORAGE = ("--storage-driver", "vfs", "--root", str(CACHE / "storage"), "--runroot", str(RUNROOT))
BASE = "localhost/debian:bookworm-slim"  # what `FROM debian:bookworm-slim` finds in local storage
TAG = "localhost/vsession:test"
# The build stage, tagged so that pruning keeps its layers: a rebuild after an edit of the sources
# then starts at the package's own layer, not at apt-get.
BUILD_STAGE_TAG = "localhost/vsession-build:test"
CONTEXT_LABEL = "vsession.test.context"  # context_digest() of the files the image was built from
MIRROR = "http://deb.debian.org/debian"
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
# Added to the build stage's trust store by its ca-certificates package (update-ca-certificates reads
# this folder); mounted over the bundle itself it would break that package's set-up.
CA_EXTRA = "/usr/local/share/ca-certificates/host-bundle.crt"
NICE = ("nice", "-n", "10")


def instructions(path: Path = REPO / "Dockerfile") -> list[tuple[str, str]]:
    """The Dockerfile's instructions in order, as (WORD, arguments), continued lines joined."""
    text = path.read_text(encoding="utf-8").replace("\\\n", " ")
    found = []
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            word, _, rest = line.strip().partition(" ")
            found.append((word.upper(), " ".join(rest.split())))
    return found


def final_stage(path: Path = REPO / "Dockerfile") -> dict[str, list[str]]:
    """The last stage's instructions (what the image is made of), by word."""
    steps = instructions(path)
    last = max(i for i, (word, _) in enumerate(steps) if word == "FROM")
    found: dict[str, list[str]] = {}
    for word, rest in steps[last:]:
        found.setdefault(word, []).append(rest)
    return found


def _run(*cmd: str, timeout: float, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False, **kwargs)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:4])}... exited {done.returncode}:\n{done.stderr[-4000:]}")
    return done


@contextlib.contextmanager
def _locked() -> Iterator[None]:
    """One maker of the base image and one build at a time, across test processes."""
    CACHE.mkdir(parents=True, exist_ok=True)
    with (CACHE / "lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def base_exists() -> bool:
    cmd = ("podman", *STORAGE, "image", "exists", BASE)
    return subprocess.run(cmd, capture_output=True, timeout=60, check=False).returncode == 0


def make_base() -> None:
    """debootstrap a minimal bookworm and import it as debian:bookworm-slim, configured like the
    official image (PATH, bash)."""
    with tempfile.TemporaryDirectory(dir="/var/tmp", prefix="vsession-base-") as scratch:
        root = Path(scratch) / "root"
        _run(*NICE, "debootstrap", "--variant=minbase", "bookworm", str(root), MIRROR, timeout=1200)
        for leftover in [*root.glob("var/cache/apt/archives/*.deb"), *root.glob("var/lib/apt/lists/*")]:
            if leftover.is_file():
                leftover.unlink()
        tar = subprocess.Popen(["tar", "-C", str(root), "-c", "."], stdout=subprocess.PIPE)
        try:
            _run(
                "podman",
                *STORAGE,
                "import",
                "--change",
                "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "--change",
                'CMD ["bash"]',
                "-",
                BASE,
                stdin=tar.stdout,
                timeout=600,
            )
        finally:
            assert tar.stdout is not None
            tar.stdout.close()  # so tar gets SIGPIPE, not a full pipe, if podman stopped reading
            tar.wait()


def bud(*options: str) -> str:
    """`buildah bud` the Dockerfile; returns its output."""
    return _run(
        *NICE,
        "buildah",
        *STORAGE,
        "bud",
        "--isolation",
        "chroot",
        "--layers",
        "--force-rm",  # a failed step leaves no working container behind
        "--pull=never",
        "--format",
        "docker",
        "-v",
        f"{CA_BUNDLE}:{CA_EXTRA}:ro",
        *options,
        "-f",
        "Dockerfile",
        ".",
        cwd=REPO,
        timeout=3600,
    ).stdout


def context_digest() -> str:
    """A digest of what the build reads: the Dockerfile, .dockerignore and what it lets in."""
    digest = hashlib.sha256()
    ignore = (REPO / ".dockerignore").read_text().splitlines()
    names = ["Dockerfile", ".dockerignore", *(line[1:].strip() for line in ignore if line.startswith("!"))]
    for name in names:
        top = REPO / name
        for path in sorted([top] if top.is_file() else top.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                digest.update(f"{path.relative_to(REPO)}\0{path.stat().st_size}\0".encode())
                digest.update(path.read_bytes())
    return digest.hexdigest()


def build(tag: str = TAG) -> None:
    """Build the Dockerfile as is, making the base first if it is missing. Layers are kept, so a
    rebuild reuses what did not change, and the layers no tag needs any more are pruned (with vfs
    each is a full copy of the file system). An image already built from the same files is used
    as it is: even a fully cached build copies file systems for a minute on vfs. The host's CA
    bundle is mounted for pip (a test option: a proxy here re-signs TLS); docker format keeps the
    HEALTHCHECK, which OCI drops."""
    digest = context_digest()
    with _locked():
        if not base_exists():
            make_base()
        elif _built_from(tag) == digest:
            return
        output = bud("--label", f"{CONTEXT_LABEL}={digest}", "-t", tag)
        _run("podman", *STORAGE, "tag", build_stage_image(output), BUILD_STAGE_TAG, timeout=60)
        _run("podman", *STORAGE, "image", "prune", "--force", timeout=600)


def build_stage_image(output: str) -> str:
    """The build stage's image, from bud's output: the last "--> ID" before the last stage."""
    lines = output.splitlines()
    last_stage = max(i for i, line in enumerate(lines) if re.match(r"\[(\d+)/\1\] STEP 1/", line))
    ids = [
        m[1]
        for line in lines[:last_stage]
        if (m := re.fullmatch(r"--> (?:Using cache )?([0-9a-f]{11,})", line))
    ]
    return ids[-1]


def _built_from(tag: str) -> str | None:
    try:
        return (inspect(tag).get("Labels") or {}).get(CONTEXT_LABEL)
    except RuntimeError:  # no such image yet
        return None


def inspect(tag: str = TAG) -> dict[str, Any]:
    """The image's Docker config: Cmd, User, Env, Healthcheck, ExposedPorts, Labels, ..."""
    done = _run("buildah", *STORAGE, "inspect", "--type", "image", tag, timeout=60)
    return json.loads(done.stdout)["Docker"]["config"]


@dataclass
class Container:
    name: str
    root: Path  # its file system, seen from the host

    def run(self, *cmd: str, user: str | None = None, env: dict[str, str] | None = None) -> list[str]:
        """The `buildah run` command line for `cmd` in this container."""
        options = ["--isolation", "chroot"]
        if user:
            options += ["--user", user]
        for key, value in (env or {}).items():
            options += ["--env", f"{key}={value}"]
        return ["buildah", *STORAGE, "run", *options, self.name, "--", *cmd]


@contextlib.contextmanager
def container(tag: str = TAG) -> Iterator[Container]:
    """A working container of the image, removed afterwards (the image stays)."""
    name = _run("buildah", *STORAGE, "from", "--pull=never", tag, timeout=300).stdout.strip()
    try:
        root = _run("buildah", *STORAGE, "mount", name, timeout=60).stdout.strip()
        yield Container(name, Path(root))
    finally:
        subprocess.run(["buildah", *STORAGE, "rm", name], capture_output=True, timeout=300, check=False)


def descendants(pid: int) -> list[int]:
    """Processes below `pid`, from the host's /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                # The command name may hold spaces and parentheses; the fields after its ")" do not.
                fields = (entry / "stat").read_text().rpartition(")")[2].split()
                children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def find_python(parent: int, *words: str, patience: float = 20) -> int:
    """The Python process below `parent` whose command line holds all of `words`. (Between `buildah
    run` and it are buildah's chroot runtime and exec helper, whose command lines hold them too.)"""
    deadline = time.monotonic() + patience
    while time.monotonic() < deadline:
        for pid in descendants(parent):
            with contextlib.suppress(OSError):
                proc = Path("/proc") / str(pid)
                argv = (proc / "cmdline").read_bytes().decode().split("\0")
                python = Path(os.readlink(proc / "exe")).name.startswith("python")
                if python and all(word in argv for word in words):
                    return pid
        time.sleep(0.1)
    raise AssertionError(f"no Python process with {words} below {parent}")


def status(pid: int) -> dict[str, str]:
    """/proc/PID/status as name -> value."""
    lines = (Path("/proc") / str(pid) / "status").read_text().splitlines()
    return {name: value.strip() for name, _, value in (line.partition(":") for line in lines)}


def kill_tree(process: subprocess.Popen[str]) -> None:
    """SIGKILL `buildah run` and everything below it: killed alone it would leave the command
    running, holding its output pipe open."""
    for pid in descendants(process.pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    process.kill()
    process.wait()


def stop(pid: int, process: subprocess.Popen[str]) -> int:
    """SIGTERM the server itself (so it shuts down gracefully), then wait for `buildah run`."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    try:
        return process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        kill_tree(process)
        raise


# The far end of the call, in a fresh interpreter (see the module's docstring).


async def two_peer_call(
    endpoints: dict[str, tuple[str, dict[str, str]]], colours: list[tuple[int, int, int]]
) -> dict[str, Any]:
    """Each peer (keyed by its participant id) sends a colour and audio; returns, per peer, what it
    received from the other and the ports of the server's candidates in its last offer."""
    from aiortc import AudioStreamTrack

    from tests.support.call_client import CallClient
    from tests.support.media import ColourTrack, mean_colour

    peers = {
        pid: CallClient(url, headers, {"camera": ColourTrack(rgb), "microphone": AudioStreamTrack()})
        for (pid, (url, headers)), rgb in zip(endpoints.items(), colours, strict=True)
    }
    try:
        for peer in peers.values():
            await peer.join()
        result: dict[str, Any] = {}
        for pid, peer in peers.items():
            other = next(o for o in peers if o != pid)
            await peer.wait_for(
                lambda peer=peer, other=other: (
                    peer.frames[(other, "camera")] >= 30 and peer.frames[(other, "microphone")] >= 50
                ),
                patience=60,
            )
            assert peer.last_offer is not None
            candidates = [line.split() for line in peer.last_offer["sdp"].splitlines()]
            result[pid] = {
                "from": other,
                "camera": peer.frames[(other, "camera")],
                "microphone": peer.frames[(other, "microphone")],
                "colour": mean_colour(peer.last_video[other]),
                "errors": peer.errors,
                "server_ports": sorted({int(c[5]) for c in candidates if c[0].startswith("a=candidate:")}),
            }
        return result
    finally:
        for peer in peers.values():
            await peer.close()


if __name__ == "__main__" and sys.argv[1:] == ["call"]:
    given = json.load(sys.stdin)
    print(json.dumps(asyncio.run(two_peer_call(given["endpoints"], given["colours"]))))
