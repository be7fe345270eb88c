"""`vsession doctor` as the admin runs it: a real process, exit codes, one line per check."""

from __future__ import annotations

import datetime
import random
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.cli import run_vsession
from tests.support.coturn import running_coturn
from tests.support.small_disk import mounted
from vsession.config import load_settings
from vsession.doctor import media_ports

MakeCert = Callable[..., tuple[Path, Path]]
FakeNtp = Callable[..., str]
Keygen = Callable[[Path], str]

HOST = "video.example-practice.de"
DAY = datetime.timedelta(days=1)


def doctor(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return run_vsession("doctor", *args, cwd=cwd, env=env)


def lines(done: subprocess.CompletedProcess[str]) -> dict[str, str]:
    """Each check's line, by its name."""
    found: dict[str, str] = {}
    for line in done.stdout.splitlines():
        level, _, rest = line.partition(" ")
        found.setdefault(rest.strip().split(":")[0], f"{level} {rest.strip()}")
    return found


def free_media_range(addresses: list[str]) -> str:
    """Ten ports free on this host's addresses now, below the ephemeral range."""
    for _ in range(100):
        first = random.randrange(10000, 19990)
        if not media_ports.taken_ports(range(first, first + 10), addresses):
            return f"{first}-{first + 9}"
    pytest.fail("no free block of ten UDP ports")


def test_settings_that_do_not_load_are_a_problem_line_and_exit_2(tmp_path: Path) -> None:
    config = tmp_path / "vsession.toml"
    config.write_text('media_ports = "50000-50003"\n')
    done = doctor("--config", str(config), cwd=tmp_path)
    assert done.returncode == 2
    assert done.stdout.startswith(
        "PROBLEM settings: invalid setting 'media_ports': '50000-50003' has 4 ports"
    )
    assert f"correct 'media_ports' in {config}" in done.stdout
    assert done.stderr == ""  # no traceback

    stray = doctor(cwd=tmp_path, env={"VSESSION_MEDIA_PORT": "50000-50199"})
    assert stray.returncode == 2
    assert "remove or rename the environment variable VSESSION_MEDIA_PORT" in stray.stdout


def test_a_healthy_deployment_is_all_ok_and_a_left_identity_fails_it(
    tmp_path: Path, make_cert: MakeCert, fake_ntp: FakeNtp, keygen: Keygen
) -> None:
    now = datetime.datetime.now(datetime.UTC)
    cert, key = make_cert(HOST, now - DAY, now + 60 * DAY)
    recipient = keygen(tmp_path / "practice-computer" / "key.txt")  # off the server
    admin = tmp_path / "admin"
    admin.mkdir()
    etc = tmp_path / "etc"
    etc.mkdir()
    with running_coturn(tmp_path / "coturn") as coturn, mounted(tmp_path / "disk", size="64g") as disk:
        addresses = media_ports.host_addresses(load_settings(environ={}))
        config = etc / "vsession.toml"
        config.write_text(
            f'data_dir = "{disk / "data"}"\n'
            f'host = "127.0.0.1"\nport = 1\npublic_origin = "https://{HOST}"\n'
            f'tls_cert = "{cert}"\ntls_key = "{key}"\n'
            f'recording_recipient = "{recipient}"\n'
            f'media_ports = "{free_media_range(addresses)}"\n'
            f'ice_servers = ["{coturn.url}"]\nturn_secret = "{coturn.secret}"\n'
        )
        done = doctor("--config", str(config), "--ntp-server", fake_ntp(0.3), cwd=admin)
        found = lines(done)
        (disk / "data" / "keys").mkdir(parents=True)
        left = disk / "data" / "keys" / "practice.key"
        left.write_bytes((tmp_path / "practice-computer" / "key.txt").read_bytes())
        after = doctor("--config", str(config), "--ntp-server", fake_ntp(0.3), cwd=admin)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stderr == ""
    assert list(found) == [
        "settings",
        "certificate",
        "recording key",
        "identity files",
        "disk",
        "media ports",
        "TURN",
        "clock sync",
        "clock offset",
    ]
    # The kernel's sync state is this machine's own; everything else is as set up here.
    not_ok = {name: line for name, line in found.items() if not line.startswith("OK ")}
    assert set(not_ok) <= {"clock sync"}, done.stdout
    assert f"{coturn.url} allocated a relay" in found["TURN"]
    assert after.returncode == 1
    assert lines(after)["identity files"].startswith(
        "PROBLEM identity files: an age identity (AGE-SECRET-KEY-1…)"
    )
    assert str(left) in after.stdout
