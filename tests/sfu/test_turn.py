"""TURN with ephemeral credentials (issue 13), against real coturn from Debian's packages running the
shipped deploy/turnserver.conf on loopback (tests/support/coturn.py).

coturn takes a credential that vsession minted until its expiry and refuses it after (a relay made
before the expiry keeps working); the server hands each participant its own credential with every
offer, in the shape coturn checks, and the shared secret never reaches a page. The server's own
connections use no TURN when it mints credentials. TURN over TLS works as the config's how-to says."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import re
import ssl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aioice import stun
from aioice.turn import create_turn_endpoint

from tests.support.coturn import Coturn, running_coturn
from tests.support.inprocess import InProcessCall
from vsession.config import Settings, load_settings
from vsession.sfu.ice import browser_ice_servers, rtc_configuration
from vsession.sfu.turn import credential
from vsession.tls import ensure_self_signed

TTL_MINUTES = 90


@pytest.fixture(scope="module")
def coturn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Coturn]:
    with running_coturn(tmp_path_factory.mktemp("coturn")) as turn:
        yield turn


class Echo(asyncio.DatagramProtocol):
    """A UDP peer on loopback that sends every datagram back, to relay to and from."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.transport.sendto(data, addr)  # type: ignore[attr-defined]


class Inbox(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.received: asyncio.Queue[bytes] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.received.put_nowait(data)


async def echoed(relay: Any, inbox: Inbox, text: bytes) -> bytes:
    """Send `text` through the relay to a new echo peer (coturn checks the credential again for the
    permission) and return what came back."""
    loop = asyncio.get_running_loop()
    echo_transport, _ = await loop.create_datagram_endpoint(Echo, local_addr=("127.0.0.1", 0))
    try:
        relay.sendto(text, echo_transport.get_extra_info("sockname"))
        return await asyncio.wait_for(inbox.received.get(), 10)
    finally:
        echo_transport.close()


async def relays(turn: Coturn, username: str, password: str) -> bytes:
    """Allocate on coturn with this credential and send a datagram through the relay to an echo peer
    and back; returns what came back. Raises stun.TransactionFailed if coturn refuses."""
    relay, inbox = await create_turn_endpoint(Inbox, (turn.host, turn.port), username, password)
    try:
        return await echoed(relay, inbox, b"through the relay")
    finally:
        relay.close()


async def test_a_fresh_credential_relays_and_an_expired_one_is_refused(coturn: Coturn) -> None:
    now = int(time.time())
    fresh = credential(coturn.secret, "1", now + 600)
    assert await relays(coturn, *fresh) == b"through the relay"

    # The same seat and secret, an expiry a minute ago: coturn reads the time from the username.
    expired = credential(coturn.secret, "1", now - 60)
    with pytest.raises(stun.TransactionFailed) as refused:
        await relays(coturn, *expired)
    assert refused.value.response.attributes["ERROR-CODE"][0] == 401

    # And a page cannot make its own: a far expiry without the secret's signature is refused too.
    forged = credential("not the secret but long enough", "1", now + 600)
    with pytest.raises(stun.TransactionFailed):
        await relays(coturn, *forged)


async def test_a_relay_outlives_its_credential(coturn: Coturn) -> None:
    """A call longer than turn_ttl_minutes keeps its relay: coturn checks the expiry when the
    allocation is made, then trusts the key it derived (the page gets fresh credentials for any
    new connection anyway)."""
    expiry = int(time.time()) + 4
    relay, inbox = await create_turn_endpoint(
        Inbox, (coturn.host, coturn.port), *credential(coturn.secret, "1", expiry)
    )
    try:
        assert await echoed(relay, inbox, b"before") == b"before"
        await asyncio.sleep(max(0.0, expiry + 1.5 - time.time()))
        assert time.time() > expiry + 1
        # A new peer needs a new, authenticated CreatePermission: still accepted.
        assert await echoed(relay, inbox, b"after") == b"after"
    finally:
        relay.close()


async def test_turn_over_tls_as_the_config_describes(tmp_path: Path) -> None:
    """deploy/turnserver.conf's how-to for TURN over TLS (on 443 in production), on a free port."""
    cert, key = ensure_self_signed(tmp_path / "tls", "127.0.0.1")
    with running_coturn(tmp_path / "coturn", tls=(cert, key)) as turn:
        assert turn.tls_port is not None
        assert turn.turns_url == f"turns:127.0.0.1:{turn.tls_port}?transport=tcp"
        trusting = ssl.create_default_context(cafile=str(cert))
        username, password = credential(turn.secret, "1", int(time.time()) + 600)
        relay, inbox = await create_turn_endpoint(
            Inbox, (turn.host, turn.tls_port), username, password, ssl=trusting, transport="tcp"
        )
        try:
            assert await echoed(relay, inbox, b"over TLS") == b"over TLS"
        finally:
            relay.close()


async def first_offer(origin: str, url: str, headers: dict[str, str]) -> tuple[dict[str, Any], list[str]]:
    """Join the call over a raw socket; return the first offer and every text frame until it."""
    frames: list[str] = []
    async with aiohttp.ClientSession() as session, session.ws_connect(url, headers=headers) as ws:
        await ws.send_json({"type": "join"})
        async with asyncio.timeout(30):
            async for message in ws:
                assert message.type == aiohttp.WSMsgType.TEXT, message
                frames.append(message.data)
                data = json.loads(message.data)
                if data["type"] == "offer":
                    return data, frames
    raise AssertionError(f"the socket closed before an offer: {frames}")


async def page_text(origin: str, path: str, cookie: str) -> str:
    async with (
        aiohttp.ClientSession() as session,
        session.get(origin + path, headers={"Cookie": cookie}) as response,
    ):
        assert response.status == 200, (path, response.status)
        return await response.text()


async def test_each_participant_gets_its_own_credential_and_never_the_secret(
    coturn: Coturn, inprocess_call: Any
) -> None:
    stun_url = coturn.url.replace("turn:", "stun:", 1)
    call: InProcessCall = await inprocess_call(
        clients=1,
        ice_servers=f"{stun_url},{coturn.url}",
        turn_secret=coturn.secret,
        turn_ttl_minutes=TTL_MINUTES,
    )
    client = call.clients[0]
    seen: list[str] = []
    for who, name in ((call.therapist.agent, "therapist"), (client, "1")):
        before = time.time()
        offer, frames = await first_offer(call.origin, *call.ws(who))
        after = time.time()
        seen += frames
        stun_entry, turn_entry = offer["iceServers"]
        assert stun_entry == {"urls": stun_url}
        assert turn_entry["urls"] == coturn.url
        match = re.fullmatch(r"(\d+):(.+)", turn_entry["username"])
        assert match is not None, turn_entry
        # The seat (or the role), nothing that names a person or a session: coturn logs usernames.
        assert match.group(2) == name
        expiry = int(match.group(1))
        assert int(before) + TTL_MINUTES * 60 <= expiry <= after + TTL_MINUTES * 60
        signature = hmac.new(coturn.secret.encode(), turn_entry["username"].encode(), hashlib.sha1)
        assert turn_entry["credential"] == base64.b64encode(signature.digest()).decode()
        # What the page got works on the real relay.
        assert await relays(coturn, turn_entry["username"], turn_entry["credential"])
        # The server's own connection gathered no relay candidate: it is the public end.
        assert " typ relay" not in offer["sdp"]

    seen.append(await page_text(call.origin, f"/call/{call.session_id}", call.therapist.agent.cookie_header))
    seen.append(await page_text(call.origin, f"/j/{call.session_id}", client.cookie_header))
    assert all(coturn.secret not in text for text in seen)


def settings(tmp_path: Path, **more: str) -> Settings:
    urls = "stun:turn.example.org,turn:turn.example.org"
    return load_settings(environ={}, overrides={"data_dir": tmp_path, "ice_servers": urls, **more})


def test_static_turn_credentials_still_work_without_a_secret(tmp_path: Path) -> None:
    static = settings(tmp_path, turn_username="practice", turn_password="long static password")
    assert browser_ice_servers(static, "1", time.time()) == [
        {"urls": "stun:turn.example.org"},
        {"urls": "turn:turn.example.org", "username": "practice", "credential": "long static password"},
    ]
    servers = rtc_configuration(static).iceServers or []
    assert [(s.urls, s.username, s.credential) for s in servers] == [
        ("stun:turn.example.org", None, None),
        ("turn:turn.example.org", "practice", "long static password"),
    ]


def test_with_a_secret_the_server_itself_uses_only_stun(tmp_path: Path) -> None:
    minting = settings(tmp_path, turn_secret="a secret of more than sixteen characters")
    assert [s.urls for s in rtc_configuration(minting).iceServers or []] == ["stun:turn.example.org"]
    pages = browser_ice_servers(minting, "therapist", 1_000_000.0)
    assert pages[1]["username"] == f"{1_000_000 + minting.turn_ttl_minutes * 60}:therapist"
