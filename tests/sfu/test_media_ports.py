"""Fixed media ports (issue 13): with `media_ports` set, every ICE candidate the server gathers binds
a UDP port inside the range, in concurrent calls too, with ice_loopback (the tests' mode) on.

Real aiortc peers through a live `vsession serve`. The server's side is read twice: from the
candidates in the SDP it offers each participant, and from the kernel, as the UDP sockets its
process holds (/proc), so a socket bound outside the range cannot hide behind a candidate it never
offered. The clients run in this test's process, with their own ports.

Each test's range is free when it starts and lies below the kernel's ephemeral ports (32768 on), so
no port the kernel hands out to a process lands in it; the server skips a port taken anyway (the
second test takes some on purpose)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import secrets
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import aioice.ice
import pytest
from aiortc import AudioStreamTrack

from tests.support.actors import admitted_clients, enrol_therapist, schedule
from tests.support.call_client import CallClient
from tests.support.call_server import Call, start_call_server
from tests.support.cli import run_vsession
from tests.support.coturn import running_coturn
from tests.support.live_server import LiveServer
from tests.support.media import ColourTrack
from vsession.sfu.ports import use_media_ports
from vsession.sfu.turn import credential

RANGE_SIZE = 10  # config.MIN_MEDIA_PORTS: the smallest range start-up accepts
CANDIDATE = re.compile(
    r"^a=candidate:\S+ (?P<component>\d+) udp \d+ (?P<address>\S+) (?P<port>\d+) typ (?P<type>\w+)",
    re.MULTILINE,
)


def some_range() -> range:
    """RANGE_SIZE consecutive ports that no socket holds now, on any address."""
    for _ in range(100):
        first = 20000 + secrets.randbelow(10000)
        ports = range(first, first + RANGE_SIZE)
        with contextlib.suppress(OSError), occupied(ports):
            return ports
    raise RuntimeError("no free range of ports below 30010")


def setting(ports: range) -> str:
    return f'media_ports = "{ports.start}-{ports.stop - 1}"'


def host_addresses() -> set[str]:
    """The addresses the server binds candidates on: its interfaces', plus 127.0.0.1 (ice_loopback)."""
    return {*aioice.ice.get_host_addresses(use_ipv4=True, use_ipv6=True), "127.0.0.1"}


def udp_sockets(pid: int) -> list[tuple[str, int]]:
    """(address, port) of every UDP socket process `pid` holds, from the kernel's tables."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    found = []
    for table, family in (("udp", socket.AF_INET), ("udp6", socket.AF_INET6)):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[9] in inodes:
                hex_address, hex_port = fields[1].split(":")
                raw = bytes.fromhex(hex_address)
                # The kernel prints each 32-bit word of the address in host (little-endian) order.
                words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
                found.append((socket.inet_ntop(family, words), int(hex_port, 16)))
    return found


def candidates(client: CallClient) -> list[tuple[str, str, int]]:
    """(type, address, port) of the candidates in the server's latest offer to `client`."""
    assert client.last_offer is not None
    found = list(CANDIDATE.finditer(client.last_offer["sdp"]))
    # One component (bundled, rtcp-mux), its candidates repeated in each m-section.
    assert {m["component"] for m in found} <= {"1"}
    return sorted({(m["type"], m["address"], int(m["port"])) for m in found})


def offered(client: CallClient) -> list[tuple[str, int]]:
    """(address, port) of the server's candidates for `client`, with no STUN or TURN server."""
    found = candidates(client)
    assert {kind for kind, _, _ in found} <= {"host"}
    return [(address, port) for _, address, port in found]


async def sessions(server: LiveServer, count: int) -> list[Call]:
    """`count` sessions of one therapist, each with one admitted client, over real HTTP."""

    def work() -> list[Call]:
        therapist = enrol_therapist(server.url, server.setup_link())
        calls = []
        for _ in range(count):
            session_id, links = schedule(therapist, 1)
            calls.append(
                Call(
                    server, therapist, session_id, admitted_clients(server.url, therapist, session_id, links)
                )
            )
        return calls

    return await asyncio.to_thread(work)


def pair(call: Call, colours: tuple[tuple[int, int, int], tuple[int, int, int]]) -> dict[str, CallClient]:
    ends = {"t": call.therapist_ws(), "s1": call.client_ws(0)}
    return {
        pid: CallClient(url, headers, {"camera": ColourTrack(colour), "microphone": AudioStreamTrack()})
        for (pid, (url, headers)), colour in zip(ends.items(), colours, strict=True)
    }


async def media_flows(peers: dict[str, CallClient]) -> None:
    """Each end receives the other's video and audio, counted from now."""
    for pid, peer in peers.items():
        [other] = [o for o in peers if o != pid]
        video, audio = peer.frames[(other, "camera")], peer.frames[(other, "microphone")]
        await peer.wait_for(
            lambda peer=peer, other=other, video=video, audio=audio: (
                peer.frames[(other, "camera")] >= video + 15
                and peer.frames[(other, "microphone")] >= audio + 25
            ),
            patience=45,
        )


def log_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]


@contextlib.contextmanager
def occupied(ports: range) -> Iterator[None]:
    """Another process's sockets on `ports`, on every address (IPv4 and IPv6 wildcards)."""
    held = []
    try:
        for port in ports:
            v4 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            v6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
            held += [v4, v6]
            v4.bind(("0.0.0.0", port))
            v6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            v6.bind(("::", port))
        yield
    finally:
        for sock in held:
            sock.close()


COLOURS = ((220, 40, 40), (40, 200, 40))


async def test_concurrent_calls_bind_every_candidate_inside_the_range(tmp_path: Path) -> None:
    ports = some_range()
    server = start_call_server(tmp_path, setting(ports))
    peers: list[dict[str, CallClient]] = []
    try:
        calls = await sessions(server, 3)
        peers = [pair(call, COLOURS) for call in calls]
        for call_peers in peers:
            for peer in call_peers.values():
                await peer.join()
        for call_peers in peers:
            await media_flows(call_peers)

        addresses = host_addresses()
        everyone = [peer for call_peers in peers for peer in call_peers.values()]
        for peer in everyone:
            candidates = offered(peer)
            assert all(port in ports for _, port in candidates), (candidates, ports)
            # One candidate per server address, 127.0.0.1 among them: ice_loopback and the range agree.
            assert {address for address, _ in candidates} == addresses
            assert len(candidates) == len(addresses)
        sockets = udp_sockets(server.process.pid)
        assert all(port in ports for _, port in sockets), (sockets, ports)
        # One socket per participant and address: nothing else of the server's is bound on UDP.
        assert sorted(sockets) == sorted(c for peer in everyone for c in offered(peer))
        assert len(sockets) == len(everyone) * len(addresses)
        # No address has a port twice, so a range fits as many participants as it has ports.
        for address in addresses:
            taken = [port for a, port in sockets if a == address]
            assert len(taken) == len(set(taken)) == len(everyone)
    finally:
        for call_peers in peers:
            for peer in call_peers.values():
                await peer.close()
        server.stop()


async def test_a_full_range_refuses_candidates_and_never_binds_outside_it(tmp_path: Path) -> None:
    ports = some_range()
    log = tmp_path / "server.log"
    server = start_call_server(tmp_path, setting(ports), log=log)
    peers: list[dict[str, CallClient]] = []
    try:
        first, second = await sessions(server, 2)
        with occupied(ports[2:]):  # another process holds all but two ports: room for one call
            peers.append(pair(first, COLOURS))
            for peer in peers[0].values():
                await peer.join()
            await media_flows(peers[0])
            peers.append(pair(second, COLOURS))
            for peer in peers[1].values():
                await peer.join()
            for peer in peers[1].values():
                await peer.wait_for(lambda peer=peer: peer.offers > 0)
                assert offered(peer) == []  # no candidate at all rather than one outside the range
            sockets = udp_sockets(server.process.pid)
            assert sorted(port for _, port in sockets) == sorted(
                port for peer in peers[0].values() for _, port in offered(peer)
            )
            assert all(port in ports[:2] for _, port in sockets), (sockets, ports)
            await media_flows(peers[0])  # the call that fits is untouched

        refusals = [e for e in log_lines(log) if "has no free port left" in e["msg"]]
        assert refusals, "the refusal was not logged"
        wording = f"media_ports {ports.start}-{ports.stop - 1} has no free port left on "
        assert all(e["level"] == "error" and e["msg"].startswith(wording) for e in refusals)
        assert "widen media_ports" in refusals[0]["msg"]
        assert not [e for e in log_lines(log) if "exc" in e], "a traceback was logged"

        # Ports freed: the refused participants connect again (a reload) and their media flows.
        for peer in peers[1].values():
            await peer.close()
        peers[1] = pair(second, COLOURS)
        for peer in peers[1].values():
            await peer.join()
        await media_flows(peers[1])
        for peer in peers[1].values():
            assert all(port in ports for _, port in offered(peer))
        assert all(port in ports for _, port in udp_sockets(server.process.pid))
    finally:
        for call_peers in peers:
            for peer in call_peers.values():
                await peer.close()
        server.stop()


async def test_a_connection_closed_while_binding_gives_its_ports_back() -> None:
    """A participant can leave while the server gathers for it. aioice's close() frees only the
    sockets it already knows of, so ones bound after it would hold ports of the range for good."""
    ports = some_range()
    addresses = sorted(host_addresses())
    connection = aioice.ice.Connection(ice_controlling=True)
    use_media_ports(ports)
    try:
        gathering = asyncio.create_task(connection.get_component_candidates(1, addresses))
        await asyncio.sleep(0)  # it has bound a first port and waits for that socket's transport
        await connection.close()
        assert await gathering == []
    finally:
        use_media_ports(None)
    for address in addresses:
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        for port in ports:
            with socket.socket(family, socket.SOCK_DGRAM) as probe:
                probe.bind((address, port))  # OSError if a socket of the connection still held it


@pytest.mark.parametrize(
    ("value", "problem"), [("50010-50000", "FIRST <= LAST"), ("50000-50004", "give at least 10")]
)
def test_a_bad_or_too_small_range_stops_start_up(tmp_path: Path, value: str, problem: str) -> None:
    result = run_vsession(
        "serve", "--data-dir", tmp_path / "data", "--port", "0", env={"VSESSION_MEDIA_PORTS": value}
    )
    assert result.returncode == 2
    assert result.stdout == ""  # no URL: it never listened
    [line] = result.stderr.splitlines()
    assert line.startswith("vsession: invalid setting 'media_ports': ")
    assert problem in line


async def test_stun_and_turn_candidates_with_the_range(tmp_path: Path) -> None:
    """Server-reflexive candidates are queried on the host sockets, so their ports are in the range
    too (here, without a NAT, the same ports). A relayed candidate's port is coturn's. With static
    turn_username/turn_password the server allocates relays itself, and its socket towards coturn
    is then the one UDP socket per participant outside the range: a client socket to the TURN
    server (a stateful firewall lets its answers in). With turn_secret it uses no TURN itself."""
    ports = some_range()
    with running_coturn(tmp_path / "coturn") as turn:
        username, password = credential(turn.secret, "media-ports-test", int(time.time()) + 3600)
        stun_url = turn.url.replace("turn:", "stun:", 1)
        server = start_call_server(
            tmp_path,
            setting(ports),
            f'ice_servers = ["{stun_url}", "{turn.url}"]',
            f'turn_username = "{username}"',
            f'turn_password = "{password}"',
        )
        peers: dict[str, CallClient] = {}
        try:
            [call] = await sessions(server, 1)
            peers = pair(call, COLOURS)
            for peer in peers.values():
                await peer.join()
            await media_flows(peers)
            for peer in peers.values():
                found = candidates(peer)
                kinds = {kind for kind, _, _ in found}
                assert kinds == {"host", "srflx", "relay"}, (found, turn.log()[-2000:])
                assert all(port in ports for kind, _, port in found if kind != "relay"), (found, ports)
            sockets = udp_sockets(server.process.pid)
            outside = [s for s in sockets if s[1] not in ports]
            assert len(outside) == len(peers), (sockets, ports)
        finally:
            for peer in peers.values():
                await peer.close()
            server.stop()
