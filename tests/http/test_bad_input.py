"""Inputs that once gave a 500 and a traceback (issue 11, finding 3) get a clear 4xx instead, change
nothing, and leave no error in the log: a JSON body over the 64 KiB limit, JSON nested deeper than the
parser's recursion, whole numbers too large for a float or for SQLite, and over-long seat numbers."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from tests.support.app_client import Server, Therapist, enrol, open_server
from tests.support.clock import FakeClock
from vsession.config import Settings


@pytest.fixture
async def server(aiohttp_client: Any, settings: Settings, clock: FakeClock) -> Server:
    return await open_server(aiohttp_client, settings, clock)


@pytest.fixture
async def therapist(server: Server) -> Therapist:
    return await enrol(server)


@pytest.fixture
def errors(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    caplog.set_level(logging.INFO)
    return caplog.records


async def send(server: Server, path: str, body: bytes, cookie: str | None = None, csrf: str | None = None):
    headers = {"Origin": server.origin, "Content-Type": "application/json"}
    if cookie:
        headers["Cookie"] = f"__Host-vsession={cookie}"
    if csrf:
        headers["X-CSRF-Token"] = csrf
    response = await server.client.post(path, data=body, headers=headers)
    async with response:
        return response.status, await response.text()


def assert_clean(status: int, text: str, expected: int, errors: list[logging.LogRecord]) -> None:
    assert status == expected, text
    assert "Traceback" not in text and "Something went wrong" not in text
    assert '"error"' in text
    bad = [r for r in errors if r.levelno >= logging.ERROR or r.exc_info]
    assert bad == [], [r.getMessage() for r in bad]


async def test_a_json_body_over_64_kib_is_413(server: Server, errors: list[logging.LogRecord]) -> None:
    body = b'{"username": "ada", "password": "' + b"x" * (65 * 1024) + b'"}'
    status, text = await send(server, "/api/login", body)
    assert_clean(status, text, 413, errors)
    assert "too large" in text


@pytest.mark.parametrize("opener", [b"[" * 60_000, b'{"a":' * 13_000])  # each under 64 KiB
async def test_json_nested_beyond_the_parser_is_400(
    server: Server, errors: list[logging.LogRecord], opener: bytes
) -> None:
    status, text = await send(server, "/api/login", opener)
    assert_clean(status, text, 400, errors)


@pytest.mark.parametrize("field", ["starts_at", "duration_minutes", "seats"])
@pytest.mark.parametrize("digits", [20, 400])
async def test_a_huge_whole_number_is_400(
    server: Server, therapist: Therapist, errors: list[logging.LogRecord], field: str, digits: int
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
    server: Server, therapist: Therapist, errors: list[logging.LogRecord], seat: str, action: str
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
