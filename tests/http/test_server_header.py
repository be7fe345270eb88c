"""The Server header names no software version (issue 11, finding 6): not on pages, JSON, static
files, redirects, the app's own and aiohttp's errors, a WebSocket upgrade, or the replies aiohttp's
HTTP parser sends before any route is found."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp import web

from tests.support.app_client import Server, enrol, open_server
from tests.support.clock import FakeClock
from vsession.auth.signins import COOKIE
from vsession.config import Settings


async def boom(request: web.Request) -> web.Response:
    raise RuntimeError("boom")


@pytest.fixture
async def server(aiohttp_client: Any, settings: Settings, clock: FakeClock) -> Server:
    return await open_server(aiohttp_client, settings, clock)


def assert_no_version(value: str | None) -> None:
    assert value == "vsession", value


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/", 200),
        ("GET", "/login", 200),
        ("GET", "/dashboard", 302),
        ("GET", "/static/style.css", 200),
        ("HEAD", "/static/style.css", 200),
        ("GET", "/static/nothing.js", 404),
        ("GET", "/healthz", 200),
        ("GET", "/api/me", 401),
        ("GET", "/no/such/page", 404),
        ("DELETE", "/api/login", 405),
        ("POST", "/api/login", 400),
        ("POST", "/api/logout", 401),
        ("GET", "/ws", 400),
    ],
)
async def test_every_response_of_the_app(server: Server, method: str, path: str, status: int) -> None:
    headers = {"Origin": server.origin}
    response = await server.client.request(method, path, allow_redirects=False, headers=headers)
    assert response.status == status
    assert_no_version(response.headers.get("Server"))


async def test_an_unexpected_error(aiohttp_client: Any, settings: Settings) -> None:
    from vsession.app import create_app

    app = create_app(settings)
    app.router.add_get("/boom", boom)
    client = await aiohttp_client(app)
    response = await client.get("/boom")
    assert response.status == 500
    assert_no_version(response.headers.get("Server"))


async def test_a_websocket_upgrade(server: Server) -> None:
    therapist = await enrol(server)
    headers = {"Origin": server.origin, "Cookie": f"{COOKIE}={therapist.browser.cookie}"}
    ws = await server.client.ws_connect("/ws?role=therapist", headers=headers)
    try:
        assert ws._response.status == 101
        assert_no_version(ws._response.headers.get("Server"))
    finally:
        await ws.close()


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"HZ / HTTP/1.1\r\nHost: x\r\n\r\n",  # no such method
        b"GET / HTTP/1.1\r\nHost: x\r\nNot a header\r\n\r\n",
        b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",  # a request line over aiohttp's limit
        b"GET / HTTP/9.9\r\nHost: x\r\n\r\n",
    ],
)
async def test_replies_of_the_http_parser(server: Server, request_bytes: bytes) -> None:
    reader, writer = await asyncio.open_connection(server.client.host, server.client.port)
    try:
        writer.write(request_bytes)
        await writer.drain()
        # The parser's replies close the connection; the timeout only stops a broken run from hanging.
        reply = await asyncio.wait_for(reader.read(), timeout=10)
        head = reply.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    finally:
        writer.close()
    lines = head.split("\r\n")
    assert lines[0].split()[1].startswith("4"), lines[0]
    found = [line.split(":", 1)[1].strip() for line in lines[1:] if line.lower().startswith("server:")]
    assert found == ["vsession"], head
