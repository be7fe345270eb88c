"""Inputs that once gave a 500 or a traceback (issue 11, finding 3, and what the route walk found
next) get a clear 4xx instead, change nothing, and leave no error in the log: a JSON body over the
64 KiB limit, JSON nested deeper than the parser's recursion, whole numbers too large for a float or
for SQLite, over-long seat numbers, static file names too long for the file system, and requests
aiohttp's HTTP parser refuses."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from yarl import URL

from tests.support.app_client import Server, Therapist, enrol, open_server
from tests.support.clock import FakeClock
from vsession.config import Settings
from vsession.webdir import web_dir


@pytest.fixture
async def server(aiohttp_client: Any, settings: Settings, clock: FakeClock) -> Server:
    return await open_server(aiohttp_client, settings, clock)


@pytest.fixture
async def therapist(server: Server) -> Therapist:
    return await enrol(server)


class Log:
    """What the server logged during the test (caplog keeps one list per test phase, so read late)."""

    def __init__(self, caplog: pytest.LogCaptureFixture) -> None:
        self.caplog = caplog

    @property
    def records(self) -> list[logging.LogRecord]:
        return self.caplog.records

    def errors(self) -> list[str]:
        return [r.getMessage() for r in self.records if r.levelno >= logging.ERROR or r.exc_info]


@pytest.fixture
def errors(caplog: pytest.LogCaptureFixture) -> Log:
    caplog.set_level(logging.INFO)
    return Log(caplog)


async def send(server: Server, path: str, body: bytes, cookie: str | None = None, csrf: str | None = None):
    headers = {"Origin": server.origin, "Content-Type": "application/json"}
    if cookie:
        headers["Cookie"] = f"__Host-vsession={cookie}"
    if csrf:
        headers["X-CSRF-Token"] = csrf
    response = await server.client.post(path, data=body, headers=headers)
    async with response:
        return response.status, await response.text()


def assert_clean(status: int, text: str, expected: int, errors: Log) -> None:
    assert status == expected, text
    assert "Traceback" not in text and "Something went wrong" not in text
    assert '"error"' in text
    assert errors.errors() == []


async def test_a_json_body_over_64_kib_is_413(server: Server, errors: Log) -> None:
    body = b'{"username": "ada", "password": "' + b"x" * (65 * 1024) + b'"}'
    status, text = await send(server, "/api/login", body)
    assert_clean(status, text, 413, errors)
    assert "too large" in text


@pytest.mark.parametrize("opener", [b"[" * 60_000, b'{"a":' * 13_000])  # each under 64 KiB
async def test_json_nested_beyond_the_parser_is_400(server: Server, errors: Log, opener: bytes) -> None:
    status, text = await send(server, "/api/login", opener)
    assert_clean(status, text, 400, errors)


@pytest.mark.parametrize("field", ["starts_at", "duration_minutes", "seats"])
@pytest.mark.parametrize("digits", [20, 400])
async def test_a_huge_whole_number_is_400(
    server: Server, therapist: Therapist, errors: Log, field: str, digits: int
) -> None:
    fields = {"title": '"Weekly"', "starts_at": str(int(server.clock.now())), "duration_minutes": "50"}
    fields |= {"seats": "1", field: "9" * digits}
    body = ("{" + ", ".join(f'"{k}": {v}' for k, v in fields.items()) + "}").encode()
    browser = therapist.browser
    status, text = await send(server, "/api/sessions", body, browser.cookie, browser.csrf)
    assert_clean(status, text, 400, errors)
    assert (await browser.get("/api/sessions")).body == {"sessions": []}


@pytest.mark.parametrize("seat", ["9" * 23, "-1", "1_0", "١", "+1", " 1"])
@pytest.mark.parametrize("action", ["reissue", "admit", "deny", "remove"])
async def test_a_seat_number_out_of_range_is_404(
    server: Server, therapist: Therapist, errors: Log, seat: str, action: str
) -> None:
    browser = therapist.browser
    created = await browser.post(
        "/api/sessions",
        {"title": "Weekly", "starts_at": int(server.clock.now()), "duration_minutes": 50, "seats": 1},
    )
    assert created.status == 201
    path = f"/api/sessions/{created.body['id']}/seats/{seat}/{action}"
    status, text = await send(server, path, b"{}", browser.cookie, browser.csrf)
    assert_clean(status, text, 404, errors)


@pytest.mark.parametrize(
    "name",
    ["%C3%A9" * 200, "a" * 300, "%2541" * 300, "..%2f..%2fpyproject.toml", "%00", "js", "js/", "%2e%2e/"],
)
@pytest.mark.parametrize("method", ["GET", "HEAD"])
async def test_a_static_name_that_is_no_file_is_404(
    server: Server, errors: Log, name: str, method: str
) -> None:
    """Found by the route walk: an over-long name made aiohttp's static handler raise ENAMETOOLONG."""
    url = URL(f"{server.client.make_url('/')}static/{name}", encoded=True)
    response = await server.client.session.request(method, url)
    async with response:
        text = await response.text()
    assert response.status == 404, text
    assert errors.errors() == []


async def test_every_file_of_web_is_served(server: Server) -> None:
    for path in sorted(p for p in web_dir().rglob("*") if p.is_file()):
        name = path.relative_to(web_dir()).as_posix()
        response = await server.client.get(f"/static/{name}")
        assert response.status == 200, name
        assert await response.read() == path.read_bytes()


MALFORMED = [
    b"FOO / HTTP/1.1\r\nHost: x\r\n\r\n",  # after a first, good request on the same connection
    b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nNot a header\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nX: " + b"y" * 9000 + b"\r\n\r\n",
    b"POST /api/login HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
    b"POST /api/login HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
]


@pytest.mark.parametrize("request_bytes", MALFORMED)
async def test_a_malformed_request_is_400_without_a_traceback_in_the_log(
    server: Server, errors: Log, request_bytes: bytes
) -> None:
    """aiohttp logged each with a traceback at ERROR: a client's mistake is one line at INFO."""
    reader, writer = await asyncio.open_connection(server.client.host, server.client.port)
    try:
        # A good request first: aiohttp logs a bad method on a connection's first request at DEBUG.
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)
        [length] = [int(h.split(b":")[1]) for h in head.split(b"\r\n") if h.startswith(b"Content-Length")]
        await reader.readexactly(length)
        writer.write(request_bytes)
        await writer.drain()
        # aiohttp closes the connection after refusing; the timeout only stops a broken run from hanging.
        reply = await asyncio.wait_for(reader.read(), timeout=10)
    finally:
        writer.close()
    assert head.startswith(b"HTTP/1.1 200 ") and reply.startswith(b"HTTP/1.0 400 "), reply[:500]
    assert errors.errors() == []


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/login", b'{"username": "ada\\ud800", "password": "violet kettle harbour quietly 42"}'),
        ("/api/login", b'{"username": "ada", "password": "\\udfffviolet kettle harbour quietly 42"}'),
        ("/api/setup", b'{"token": "x", "name": "\\ud800", "username": "zed", "password": "p"}'),
    ],
)
async def test_text_that_is_not_unicode_is_400(server: Server, errors: Log, path: str, body: bytes) -> None:
    """Found by the route walk: JSON may escape half a surrogate pair, which Python decodes into a str
    that cannot be encoded again (for SQLite, a hash or a seal)."""
    status, text = await send(server, path, body)
    assert_clean(status, text, 400, errors)
    assert "not valid text" in text
