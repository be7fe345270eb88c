"""Each TURN server allocates a relay with a credential made as participants get theirs."""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from collections.abc import Sequence

from aioice import stun
from aioice.turn import TurnClientTcpProtocol, TurnClientUdpProtocol
from aiortc.rtcicetransport import parse_stun_turn_uri

from vsession.doctor.findings import Finding, ok, problem, warn
from vsession.doctor.net import resolve
from vsession.sfu.turn import credential

CHECK = "TURN"
LIFETIME = 60  # seconds; the allocation is deleted at once anyway
CREDENTIAL_SECONDS = 300
MISMATCH_FIX = (
    "make turn_secret equal coturn's static-auth-secret (deploy/turnserver.conf, or its --static-auth-secret)"
)


def check_turn_config(urls: Sequence[str], secret: str, username: str) -> Finding | None:
    """A line when there is nothing to try; None when each turn URL should be tried."""
    if not any(url.startswith(("turn:", "turns:")) for url in urls):
        return warn(
            CHECK,
            "no turn: URL in ice_servers: clients on networks that block UDP cannot connect",
            "run coturn (compose.yaml, deploy/turnserver.conf) and set ice_servers and turn_secret",
        )
    if not secret and not username:
        return problem(
            CHECK,
            "ice_servers has a TURN URL but there is no credential for it",
            "set turn_secret to coturn's static-auth-secret",
        )
    return None


async def check_turn(url: str, secret: str, username: str, password: str, within: float = 3.0) -> Finding:
    """Allocate a relay on `url` and delete it again. With `secret`, a fresh TURN REST credential."""
    if secret:
        username, password = credential(secret, "doctor", int(time.time()) + CREDENTIAL_SECONDS)
        kind = f"a fresh credential (valid {CREDENTIAL_SECONDS // 60} minutes)"
    else:
        kind = "the static turn_username/turn_password"
    try:
        parsed = parse_stun_turn_uri(url)
    except ValueError as exc:
        return problem(CHECK, f"{url}: {exc}", "write it as turn:HOST:PORT or turns:HOST:PORT?transport=tcp")
    try:
        async with asyncio.timeout(within):
            relayed = await _allocate(parsed, username, password)
    except stun.TransactionFailed as exc:
        code = exc.response.error_code
        reason = str(exc.response.attributes.get("ERROR-CODE", (code, ""))[1])
        if code == 401:
            return problem(
                CHECK, f"{url} refused {kind} (401 {reason})", MISMATCH_FIX if secret else "fix turn_password"
            )
        return problem(
            CHECK,
            f"{url} refused the allocation ({code} {reason})",
            "see the TURN server's log for the reason",
        )
    except (TimeoutError, stun.TransactionTimeout):
        return problem(
            CHECK,
            f"no answer from {url} within {within:g} s",
            "start the TURN server (coturn), and open its port in the firewall; check the host and port",
        )
    except OSError as exc:  # ConnectionError too
        return problem(
            CHECK, f"cannot reach {url}: {exc}", "start the TURN server; check the host, port and TLS"
        )
    return ok(CHECK, f"{url} allocated a relay ({relayed[0]}:{relayed[1]}) with {kind}")


async def _allocate(parsed: dict[str, object], username: str, password: str) -> tuple[str, int]:
    host, port = str(parsed["host"]), int(str(parsed["port"]))
    tcp = parsed["transport"] == "tcp"
    family, address = await resolve(host, port, socket.SOCK_STREAM if tcp else socket.SOCK_DGRAM)
    server = (address[0], address[1])
    loop = asyncio.get_running_loop()
    protocol: TurnClientTcpProtocol | TurnClientUdpProtocol
    if tcp:
        context = ssl.create_default_context() if parsed["scheme"] == "turns" else None
        _, protocol = await loop.create_connection(
            lambda: TurnClientTcpProtocol(server, username, password, LIFETIME, LIFETIME),
            host=server[0],
            port=server[1],
            ssl=context,
            server_hostname=host if context else None,
        )
    else:
        _, protocol = await loop.create_datagram_endpoint(
            lambda: TurnClientUdpProtocol(server, username, password, LIFETIME, LIFETIME),
            remote_addr=server,
            family=family,
        )
    try:
        relayed = await protocol.connect()
    except BaseException:
        protocol.transport.close()
        raise
    await protocol.delete()  # also closes the transport
    return relayed
