"""vsession behind real Caddy (deploy/Caddyfile as shipped, `tls internal` certificates, loopback).

Pages, the JSON API and the WebSocket work through it. With trusted_proxies = 127.0.0.1, sign-in
limits, the audit log and the access log name the address Caddy puts in X-Forwarded-For; the
header counts from nobody else, and a client cannot choose its own address through Caddy either.
Several clients are several loopback addresses (127.0.0.2, .3, ...): all of 127/8 is this machine.
"""

from __future__ import annotations

import asyncio
import json
import socket
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from tests.support.actors import Agent, admit, client_waits, enrol_therapist, schedule
from tests.support.caddy import Proxied, behind_caddy, free_port, request_from, start_caddy
from vsession.audit.personal import unseal
from vsession.auth.secretbox import SecretBox
from vsession.http.client_address import forwarded_client
from vsession.keyfile import read_key

TRUSTED = ("127.0.0.1",)
IP_LIMIT = 3  # failed sign-ins per address before that address is refused
SPOOFED = "198.51.100.9"  # what a client claims to be (TEST-NET-2)
WS_TIMEOUT = 10  # seconds; only so a silent socket fails the test instead of hanging it


# The walk over X-Forwarded-For, without a network.


@pytest.mark.parametrize(
    ("peer", "lines", "trusted", "expected"),
    [
        # Not from a trusted proxy: the header is anyone's claim.
        ("203.0.113.5", ["198.51.100.9"], TRUSTED, "203.0.113.5"),
        ("127.0.0.2", ["198.51.100.9"], TRUSTED, "127.0.0.2"),
        ("203.0.113.5", ["198.51.100.9"], (), "203.0.113.5"),
        # From the proxy: the address it appended, never what the client put before it.
        ("127.0.0.1", ["203.0.113.7"], TRUSTED, "203.0.113.7"),
        ("127.0.0.1", ["198.51.100.9, 203.0.113.7"], TRUSTED, "203.0.113.7"),
        ("127.0.0.1", ["198.51.100.9", "203.0.113.7"], TRUSTED, "203.0.113.7"),
        # The practice's own proxies in a chain are skipped from the right.
        ("127.0.0.1", ["198.51.100.9, 203.0.113.7, 10.0.0.5"], ("127.0.0.1", "10.0.0.0/8"), "203.0.113.7"),
        ("127.0.0.1", ["2001:db8::7"], TRUSTED, "2001:db8::7"),
        ("::1", ["203.0.113.7"], ("::1",), "203.0.113.7"),
        # An IPv4 peer as a dual-stack socket shows it.
        ("::ffff:127.0.0.1", ["203.0.113.7"], TRUSTED, "203.0.113.7"),
        # Every hop the practice's own: a client inside the proxy's network, the farthest address.
        ("127.0.0.1", ["10.0.0.9, 10.0.0.5"], ("127.0.0.1", "10.0.0.0/8"), "10.0.0.9"),
        # From the proxy but no use: the peer, never an error.
        ("127.0.0.1", [], TRUSTED, "127.0.0.1"),
        ("127.0.0.1", [""], TRUSTED, "127.0.0.1"),
        ("127.0.0.1", ["garbage"], TRUSTED, "127.0.0.1"),
        ("127.0.0.1", ["203.0.113.7, "], TRUSTED, "127.0.0.1"),
        ("127.0.0.1", ["203.0.113.7:4711"], TRUSTED, "127.0.0.1"),
        ("127.0.0.1", ["198.51.100.9, nonsense, 203.0.113.7"], TRUSTED, "127.0.0.1"),
        ("unknown", ["203.0.113.7"], TRUSTED, "unknown"),
    ],
)
def test_the_client_is_the_first_untrusted_hop_from_the_right(
    peer: str, lines: list[str], trusted: tuple[str, ...], expected: str
) -> None:
    assert forwarded_client(peer, lines, trusted) == expected


# Caddy itself, with an upstream that shows what it received.


async def test_caddy_replaces_the_x_forwarded_for_a_client_sends(tmp_path: Path) -> None:
    """What deploy/Caddyfile's comment says of Caddy 2.6: a client's own X-Forwarded-For is dropped,
    not appended to, and the address Caddy saw stands alone."""

    async def echo(request: web.Request) -> web.Response:
        return web.json_response({"xff": request.headers.getall("X-Forwarded-For", [])})

    app = web.Application()
    app.router.add_get("/echo", echo)
    runner = web.AppRunner(app)
    await runner.setup()
    upstream_port = free_port()
    await web.TCPSite(runner, "127.0.0.1", upstream_port).start()
    try:
        caddy = await asyncio.to_thread(start_caddy, tmp_path, f"127.0.0.1:{upstream_port}", free_port())
        try:
            context = caddy.ssl_context()
            plain = await asyncio.to_thread(request_from, "127.0.0.2", caddy.origin, "/echo", context=context)
            spoofed = await asyncio.to_thread(
                request_from,
                "127.0.0.3",
                caddy.origin,
                "/echo",
                headers={"X-Forwarded-For": SPOOFED},
                context=context,
            )
        finally:
            caddy.stop()
    finally:
        await runner.cleanup()
    assert plain.body == {"xff": ["127.0.0.2"]}
    assert spoofed.body == {"xff": ["127.0.0.3"]}


# vsession behind Caddy.


@pytest.fixture(scope="module")
def proxied(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxied]:
    work = tmp_path_factory.mktemp("proxied")
    with behind_caddy(
        work,
        f"trusted_proxies = {json.dumps(list(TRUSTED))}",
        f"ip_failure_limit = {IP_LIMIT}",
        log=work / "vsession.log",
    ) as proxied:
        yield proxied


@pytest.fixture
def trusts_caddy(proxied: Proxied, monkeypatch: pytest.MonkeyPatch) -> None:
    """urllib's default context (tests/support/actors.py) trusts Caddy's local CA, as an admin's
    machine would after installing it."""
    monkeypatch.setenv("SSL_CERT_FILE", str(proxied.caddy.root_cert))


def audited(proxied: Proxied, action: str) -> list[tuple[str, str]]:
    """(address, outcome) of each `action` entry, the address opened from its sealed row as an admin
    with the server's keys can."""
    data_dir = proxied.server.data_dir
    box = SecretBox(read_key(data_dir / "keys" / "personal-data.key"))
    with closing(sqlite3.connect(f"file:{data_dir / 'vsession.sqlite3'}?mode=ro", uri=True)) as db:
        rows = db.execute(
            "SELECT a.seq, a.outcome, p.sealed FROM audit_log a JOIN audit_personal p USING (seq)"
            " WHERE a.action = ? ORDER BY a.seq",
            (action,),
        ).fetchall()
    return [
        (unseal(box, seq, sealed).values["actor"].removeprefix("ip:"), outcome)
        for seq, outcome, sealed in rows
    ]


def logged(proxied: Proxied, wanted: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
    """vsession's log entries that `wanted` picks, waiting for the first: aiohttp writes a request's
    access line after the response has gone out."""
    path = proxied.server.data_dir.parent / "vsession.log"
    deadline = time.monotonic() + WS_TIMEOUT
    while True:
        entries = [json.loads(line) for line in path.read_text().splitlines()]
        found = [e for e in entries if wanted(e)]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def wrong_password(
    proxied: Proxied, source: str, username: str, *, direct: bool = False, xff: str = ""
) -> int:
    url = proxied.direct if direct else proxied.caddy.origin
    headers = {"Origin": proxied.caddy.origin}
    if xff:
        headers["X-Forwarded-For"] = xff
    answer = request_from(
        source,
        url,
        "/api/login",
        {"username": username, "password": "not the password at all"},
        headers,
        context=None if direct else proxied.caddy.ssl_context(),
    )
    return answer.status


def test_a_page_comes_through_with_vsessions_headers_and_caddys_hsts(proxied: Proxied) -> None:
    answer = request_from("127.0.0.2", proxied.caddy.origin, "/login", context=proxied.caddy.ssl_context())
    assert answer.status == 200
    assert answer.headers.get_content_type() == "text/html"
    assert "script-src 'self'" in answer.headers["Content-Security-Policy"]
    assert answer.headers["Strict-Transport-Security"] == "max-age=31536000"
    assert answer.headers.get_all("Server") is None


async def test_sign_in_the_api_and_the_websocket_work_through_caddy(
    proxied: Proxied, trusts_caddy: None
) -> None:
    origin = proxied.caddy.origin
    setup_link = await asyncio.to_thread(proxied.server.setup_link)
    assert setup_link.startswith(origin + "/setup#t=")
    therapist = await asyncio.to_thread(enrol_therapist, origin, setup_link)

    # A fresh sign-in, password then code, as the login page does it.
    agent = Agent(origin)
    step = await asyncio.to_thread(
        agent.post, "/api/login", {"username": therapist.username, "password": therapist.password}
    )
    assert step["next"] == "totp"
    await asyncio.to_thread(agent.post, "/api/login/code", {"code": therapist.totp.now(), "kind": "totp"})
    me = await asyncio.to_thread(agent.get, "/api/me")
    assert me["username"] == therapist.username

    session_id, links = await asyncio.to_thread(schedule, therapist, 1)
    assert links[0].startswith(f"{origin}/j/{session_id}#t=")
    client = await asyncio.to_thread(client_waits, origin, links[0], "Alice")
    ws_url = origin.replace("https", "wss", 1) + f"/ws?role=guest&session={session_id}"
    headers = {"Origin": origin, "Cookie": client.cookie_header}
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(ws_url, headers=headers, ssl=proxied.caddy.ssl_context()) as ws:
            first = await ws.receive_json(timeout=WS_TIMEOUT)
            assert first == {"type": "state", "state": "waiting"}
            await asyncio.to_thread(admit, therapist, session_id, 1)
            while (message := await ws.receive_json(timeout=WS_TIMEOUT)).get("type") != "state":
                pass
            assert message == {"type": "state", "state": "admitted"}

    # Neither link's token reached Caddy (it travels after '#'), nor vsession's log.
    for token in (setup_link.split("#t=")[1], links[0].split("#t=")[1]):
        assert token not in proxied.caddy.log.read_text()
        assert token not in (proxied.server.data_dir.parent / "vsession.log").read_text()


def test_limits_and_audit_name_the_address_caddy_forwards(proxied: Proxied) -> None:
    # 127.0.0.2 claims to be SPOOFED; Caddy replaces the claim with the address it sees.
    for n in range(IP_LIMIT):
        assert wrong_password(proxied, "127.0.0.2", f"nobody-{n}", xff=SPOOFED) == 401
    assert wrong_password(proxied, "127.0.0.2", "nobody-more", xff=SPOOFED) == 429
    # Another client behind the same proxy is not held back by the first one's failures.
    assert wrong_password(proxied, "127.0.0.3", "nobody-else") == 401

    entries = audited(proxied, "login.password")
    assert [e for e in entries if e[0] == "127.0.0.2"] == [("127.0.0.2", "fail")] * IP_LIMIT + [
        ("127.0.0.2", "throttled")
    ]
    assert ("127.0.0.3", "fail") in entries
    assert not [e for e in entries if e[0] in (SPOOFED, "127.0.0.1")]
    for address in ("127.0.0.2", "127.0.0.3"):
        assert logged(proxied, lambda e, a=address: e.get("path") == "/api/login" and e.get("remote") == a)


def test_a_bad_client_link_is_counted_against_the_forwarded_address(proxied: Proxied) -> None:
    answer = request_from(
        "127.0.0.4",
        proxied.caddy.origin,
        "/api/join/no-such-session/redeem",
        {"token": "not-a-token"},
        {"Origin": proxied.caddy.origin, "X-Forwarded-For": SPOOFED},
        context=proxied.caddy.ssl_context(),
    )
    assert 400 <= answer.status < 500
    assert ("127.0.0.4", "invalid") in audited(proxied, "link.redeem")
    assert not [e for e in audited(proxied, "link.redeem") if e[0] == SPOOFED]


def test_a_spoofed_header_straight_to_vsession_is_ignored(proxied: Proxied) -> None:
    # From an untrusted peer: its claim is nothing, its own address is what counts.
    assert wrong_password(proxied, "127.0.0.5", "nobody-direct", direct=True, xff=SPOOFED) == 401
    # From the trusted peer with a header that does not parse: that peer, and no 5xx.
    assert wrong_password(proxied, "127.0.0.1", "nobody-garbled", direct=True, xff="garbage, ") == 401
    entries = audited(proxied, "login.password")
    assert ("127.0.0.5", "fail") in entries
    assert ("127.0.0.1", "fail") in entries
    assert not [e for e in entries if e[0] == SPOOFED]


def test_a_request_aiohttp_refuses_is_logged_at_its_peer(proxied: Proxied) -> None:
    """aiohttp answers a malformed request before any route, so there are no settings to read:
    the access log still gets its line, with the peer, and no logging error."""
    host, port = proxied.direct.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), source_address=("127.0.0.6", 0)) as raw:
        raw.sendall(b"GET /\x01bad HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 198.51.100.9\r\n\r\n")
        assert raw.recv(100).split(b"\r\n")[0].endswith(b" 400 Bad Request")
    assert logged(proxied, lambda e: e.get("status") == 400 and e.get("remote") == "127.0.0.6")
    assert not logged(proxied, lambda e: e.get("msg") == "Error in logging")
