"""The media port check binds real UDP sockets: a port someone holds is found and named."""

from __future__ import annotations

import random
import socket
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from vsession.config import load_settings
from vsession.doctor import media_ports
from vsession.doctor.findings import Level

LOOPBACK = ["127.0.0.1"]


@pytest.fixture
def free_range() -> range:
    """Ten ports free on loopback now, below the ephemeral range other tests' sockets land in."""
    for _ in range(100):
        first = random.randrange(10000, 19990)
        ports = range(first, first + 10)
        if not media_ports.taken_ports(ports, LOOPBACK):
            return ports
    pytest.fail("no free block of ten loopback UDP ports")


@pytest.fixture
def holder(free_range: range) -> Iterator[socket.socket]:
    """Another process's socket, as far as the kernel is concerned: one port of the range, bound."""
    with closing(socket.socket(socket.AF_INET, socket.SOCK_DGRAM)) as sock:
        sock.bind(("127.0.0.1", free_range[3]))
        yield sock


def test_a_free_range_is_ok(free_range: range) -> None:
    finding = media_ports.check_media_ports(free_range, LOOPBACK, server_running=False)
    assert finding.level is Level.OK
    assert f"UDP {free_range.start}-{free_range.stop - 1} free on 127.0.0.1 (10 ports)" in finding.found


def test_a_port_in_use_is_a_problem_naming_it(free_range: range, holder: socket.socket) -> None:
    finding = media_ports.check_media_ports(free_range, LOOPBACK, server_running=False)
    assert finding.level is Level.PROBLEM
    span = f"UDP {free_range.start}-{free_range.stop - 1}"
    assert f"1 of {span} in use (127.0.0.1:{free_range[3]})" in finding.found
    assert "ss -ulpn" in finding.fix


def test_ports_in_use_while_vsession_runs_are_a_warning(free_range: range, holder: socket.socket) -> None:
    finding = media_ports.check_media_ports(free_range, LOOPBACK, server_running=True)
    assert finding.level is Level.WARN
    assert "vsession is running" in finding.found and "ss -ulpn" in finding.fix


def test_no_range_is_a_warning() -> None:
    assert media_ports.check_media_ports(None, LOOPBACK, server_running=False).level is Level.WARN


def test_a_running_server_is_told_by_its_port(tmp_path: Path) -> None:
    with closing(socket.create_server(("127.0.0.1", 0))) as listener:
        port = listener.getsockname()[1]
        settings = load_settings(environ={}, overrides={"data_dir": tmp_path, "port": port})
        assert media_ports.server_running(settings)
    assert not media_ports.server_running(settings)


def test_the_addresses_are_the_ones_ice_gathers_from(tmp_path: Path) -> None:
    plain = load_settings(environ={}, overrides={"data_dir": tmp_path})
    looped = load_settings(environ={}, overrides={"data_dir": tmp_path, "ice_loopback": True})
    assert "127.0.0.1" not in media_ports.host_addresses(plain)
    assert media_ports.host_addresses(looped) == [*media_ports.host_addresses(plain), "127.0.0.1"]
