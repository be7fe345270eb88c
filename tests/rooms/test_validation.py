"""Creating a session: bad input is a 400 with a clear sentence and creates nothing."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.app_client import Server, Therapist
from tests.support.rooms_api import audit_entries, dashboard

START_RULE = "Please choose a start time from today to a year ahead."
GOOD: dict[str, Any] = {"title": "Weekly", "starts_at": 1_800_000_000, "duration_minutes": 50, "seats": 1}


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"seats": 0}, "A session has 1 to 7 client seats."),
        ({"seats": 8}, "A session has 1 to 7 client seats."),
        ({"seats": -1}, "A session has 1 to 7 client seats."),
        ({"duration_minutes": 2}, "A session lasts 5 to 480 minutes."),
        ({"duration_minutes": 481}, "A session lasts 5 to 480 minutes."),
        ({"title": "x" * 121}, "The title is too long (120 characters at most)."),
        ({"starts_at": 0}, START_RULE),
        ({"starts_at": 1_800_000_000 - 13 * 3600}, START_RULE),
        ({"starts_at": 1_800_000_000 + 400 * 86400}, START_RULE),
        # Wrong types and missing fields name the field (the exact wording is json_body's).
        ({"seats": "2"}, "Field 'seats' "),
        ({"seats": True}, "Field 'seats' "),
        ({"seats": 1.5}, "Field 'seats' "),
        ({"duration_minutes": None}, "Field 'duration_minutes' "),
        ({"starts_at": "tomorrow"}, "Field 'starts_at' "),
        ({"title": 5}, "Field 'title' "),
        ({"seats": ...}, "Field 'seats' "),
    ],
)
async def test_bad_fields_are_refused(
    server: Server, ada: Therapist, change: dict[str, Any], error: str
) -> None:
    body = {k: v for k, v in {**GOOD, **change}.items() if v is not ...}
    reply = await ada.browser.post("/api/sessions", body)
    assert reply.status == 400, reply.body
    assert list(reply.body) == ["error"]
    if error.startswith("Field "):
        assert reply.body["error"].startswith(error) and "missing" in reply.body["error"]
    else:
        assert reply.body["error"] == error
    await nothing_created(server, ada)


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        (b'{"title": "Weekly", "seats": ', "The request body is not valid JSON."),
        (b"\xff\xfe", "The request body is not valid JSON."),
        (b"", "The request body is not valid JSON."),
        (b"[1, 2]", "The request body must be a JSON object."),
        (b'"seats"', "The request body must be a JSON object."),
    ],
)
async def test_malformed_bodies_are_refused(server: Server, ada: Therapist, raw: bytes, error: str) -> None:
    headers = {
        "Cookie": f"__Host-vsession={ada.browser.cookie}",
        "Origin": server.origin,
        "X-CSRF-Token": ada.browser.csrf or "",
        "Content-Type": "application/json",
    }
    async with server.client.post("/api/sessions", data=raw, headers=headers) as response:
        assert response.status == 400
        assert await response.json() == {"error": error}
    await nothing_created(server, ada)


async def test_the_limits_themselves_are_accepted(server: Server, ada: Therapist) -> None:
    for change in ({"seats": 1, "duration_minutes": 5}, {"seats": 7, "duration_minutes": 480}):
        reply = await ada.browser.post("/api/sessions", {**GOOD, **change, "title": "x" * 120})
        assert reply.status == 201, reply.body
    seats = sorted(len(s["seats"]) for s in await dashboard(ada.browser))
    assert seats == [1, 7]


async def test_a_forged_request_creates_nothing(server: Server, ada: Therapist) -> None:
    assert (await ada.browser.post("/api/sessions", GOOD, csrf=None)).status == 403
    assert (await ada.browser.post("/api/sessions", GOOD, origin="https://evil.example")).status == 403
    await nothing_created(server, ada)


async def nothing_created(server: Server, ada: Therapist) -> None:
    assert await dashboard(ada.browser) == []
    row = await server.ctx.db.fetchone("SELECT count(*) FROM therapy_sessions")
    assert row is not None and row[0] == 0
    row = await server.ctx.db.fetchone("SELECT count(*) FROM seats")
    assert row is not None and row[0] == 0
    assert await audit_entries(server, "session.create") == []
    assert await audit_entries(server, "link.issue") == []
