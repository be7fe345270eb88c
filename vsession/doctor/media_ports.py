"""The media_ports range is free on every address ICE gathers from (a taken port fails a call late)."""

from __future__ import annotations

import contextlib
import ipaddress
import socket
from collections.abc import Sequence

from vsession.config import Settings
from vsession.doctor.findings import Finding, ok, problem, warn
from vsession.sfu import ice

CHECK = "media ports"


def host_addresses(settings: Settings) -> list[str]:
    """The addresses the server's ICE agent binds (whatever an earlier create_app in this process set)."""
    return ice.host_addresses(use_ipv4=True, use_ipv6=True, loopback=settings.ice_loopback)


def taken_ports(ports: range, addresses: Sequence[str]) -> list[tuple[str, int]]:
    """Each (address, port) that cannot be bound for UDP right now."""
    taken: list[tuple[str, int]] = []
    for address in addresses:
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        for port in ports:
            with socket.socket(family, socket.SOCK_DGRAM) as sock:
                try:
                    sock.bind((address, port))
                except OSError:
                    taken.append((address, port))
    return taken


def check_media_ports(ports: range | None, addresses: Sequence[str], server_running: bool) -> Finding:
    if ports is None:
        return warn(
            CHECK,
            "media_ports is not set: calls use random UDP ports, so a firewall must open all of them",
            'set media_ports = "50000-50199" and open that UDP range in the firewall',
        )
    span = f"UDP {ports.start}-{ports.stop - 1}"
    if not addresses:
        return problem(
            CHECK, "this host has no address for ICE to gather", "check the network setup (ip address)"
        )
    taken = taken_ports(ports, addresses)
    if not taken:
        return ok(CHECK, f"{span} free on {', '.join(addresses)} ({len(ports)} ports)")
    shown = ", ".join(f"{a}:{p}" for a, p in taken[:5]) + (" …" if len(taken) > 5 else "")
    found = f"{len(taken)} of {span} in use ({shown})"
    see = (
        f"`ss -ulpn 'sport >= :{ports.start} and sport <= :{ports.stop - 1}'` names the process holding them"
    )
    if server_running:
        return warn(
            CHECK,
            f"{found}; vsession is running and its calls hold ports of the range",
            f"{see}; if it is vsession, that is expected (or run doctor with vsession stopped)",
        )
    return problem(CHECK, found, f"{see}; stop it, or choose a range nothing else uses")


def server_running(settings: Settings, timeout: float = 1.0) -> bool:
    """Whether something accepts connections on vsession's own host and port."""
    if settings.port == 0:
        return False
    host = settings.host
    with contextlib.suppress(ValueError):
        if ipaddress.ip_address(host).is_unspecified:  # bound to every address: loopback is one
            host = "::1" if ipaddress.ip_address(host).version == 6 else "127.0.0.1"
    try:
        with socket.create_connection((host, settings.port), timeout=timeout):
            return True
    except OSError:
        return False
