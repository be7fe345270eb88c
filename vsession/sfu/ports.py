"""Fixed media ports (the `media_ports` setting): every host candidate the server gathers binds a
UDP port inside the range, so a firewall opens only that range.

aioice 0.13 binds host candidates with `local_addr=(address, 0)` and has no option for it (upstream
issue aiortc/aioice#47; the open PR #112 adds a `port_range`). So `Connection.get_component_candidates`
is replaced: host sockets come from `PortPool` here, and server-reflexive candidates are queried on
them as aioice does. TURN stays aioice's own code, called with no host addresses, the path aioice
itself takes under the relay policy. Guarded by tests/sfu/test_aiortc_internals.py.

Each participant takes one port per host address: media is bundled and RTCP multiplexed, so there is
one ICE component."""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import logging
import secrets
import socket

from aioice.candidate import Candidate, candidate_foundation, candidate_priority
from aioice.ice import Connection, StunProtocol, server_reflexive_candidate
from aioice.turn import UDP_SOCKET_BUFFER_SIZE

log = logging.getLogger("vsession.sfu")

_original_candidates = Connection.get_component_candidates


class PortPool:
    """Hands out free UDP ports of a range. A rotating cursor, starting at a random place, spreads
    them: a port just given up is not reused at once, so late packets of an ended call (or of the
    previous server process) do not land on a new one."""

    def __init__(self, ports: range) -> None:
        self.ports = ports
        self._cursor = secrets.randbelow(len(ports))

    def bind(self, address: str) -> socket.socket | None:
        """A UDP socket bound to `address` on the next port that is free there, or None when every
        port of the range is taken (by us or by any other process: the kernel refuses the bind).
        Raises OSError for anything but a taken port, as binding on port 0 would."""
        family = socket.AF_INET6 if ipaddress.ip_address(address).version == 6 else socket.AF_INET
        for _ in range(len(self.ports)):
            port = self.ports[self._cursor]
            self._cursor = (self._cursor + 1) % len(self.ports)
            sock = socket.socket(family, socket.SOCK_DGRAM)
            try:
                sock.bind((address, port))
            except OSError as exc:
                sock.close()
                if exc.errno == errno.EADDRINUSE:
                    continue
                raise
            return sock
        return None

    def describe(self) -> str:
        return f"{self.ports.start}-{self.ports.stop - 1}"


def use_media_ports(ports: range | None) -> None:
    """Bind every host candidate inside `ports` from now on; None: any free port (aioice's way)."""
    if ports is None:
        Connection.get_component_candidates = _original_candidates  # type: ignore[method-assign]
        return
    pool = PortPool(ports)

    async def ranged(
        self: Connection,
        component: int,
        addresses: list[str],
        timeout: int = 5,  # noqa: ASYNC109 -- aioice's signature
    ) -> list[Candidate]:
        return await _ranged_candidates(self, pool, component, addresses, timeout)

    Connection.get_component_candidates = ranged  # type: ignore[method-assign]


async def _host_protocol(connection: Connection, pool: PortPool, address: str) -> StunProtocol | None:
    try:
        sock = pool.bind(address)
    except OSError as exc:
        # What aioice does when a bind on port 0 fails: that address gives no candidate.
        log.warning("could not bind a media port", extra={"address": address, "reason": str(exc)})
        return None
    if sock is None:
        # Never fall back to a port outside the range: the firewall would drop its media anyway.
        log.error(
            "media_ports %s has no free port left on %s: this participant gets no candidate there;"
            " widen media_ports (each participant takes one port per server address)",
            pool.describe(),
            address,
        )
        return None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, UDP_SOCKET_BUFFER_SIZE)
        _, protocol = await asyncio.get_running_loop().create_datagram_endpoint(
            lambda: StunProtocol(connection), sock=sock
        )
    except BaseException:
        sock.close()
        raise
    return protocol


async def _ranged_candidates(
    self: Connection, pool: PortPool, component: int, addresses: list[str], wait: int
) -> list[Candidate]:
    """aioice's Connection.get_component_candidates with the host sockets bound inside the range."""
    hosts: list[StunProtocol] = []
    for address in addresses:
        protocol = await _host_protocol(self, pool, address)
        if protocol is None:
            continue
        host, port = protocol.transport.get_extra_info("sockname")[:2]
        protocol.local_candidate = Candidate(
            foundation=candidate_foundation("host", "udp", host),
            component=component,
            transport="udp",
            priority=candidate_priority(component, "host"),
            host=host,
            port=port,
            type="host",
        )
        hosts.append(protocol)
    if self._closing:
        # Closed while binding: its close() has passed, so nothing else would free these ports.
        for protocol in hosts:
            await protocol.close()
        return []
    self._protocols += hosts

    async def reflexive() -> list[Candidate]:
        # As aioice: IPv4 only, on the host sockets (behind a 1:1 NAT, the same port number).
        if not self.stun_server:
            return []
        stun_server = self.stun_server
        tasks = [
            asyncio.create_task(server_reflexive_candidate(p, stun_server))
            for p in hosts
            if ipaddress.ip_address(p.local_candidate.host).version == 4
        ]
        if not tasks:
            return []
        done, pending = await asyncio.wait(tasks, timeout=wait)
        for task in pending:
            task.cancel()
        return [task.result()[0] for task in done if task.exception() is None]

    found, relayed = await asyncio.gather(reflexive(), _original_candidates(self, component, [], wait))
    return [p.local_candidate for p in hosts] + found + relayed
