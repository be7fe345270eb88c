"""The therapist's recordings over HTTP, and retention: each therapist lists only their own
recordings; download and delete need a fresh TOTP (step-up); a download is exactly the ciphertext
and is audited; a delete destroys the file and writes a receipt; another therapist gets 404; old
recordings are deleted by retention, with receipts. The listing names the session and the people
and says how each recording ended. Recordings come from real calls; the server's clock follows
real time until the test moves it on."""

from __future__ import annotations

import asyncio
import hashlib
import json
from typing import Any

import aiohttp
import pytest
from aiortc import AudioStreamTrack

from tests.support import inprocess
from tests.support.actors import Agent, Therapist, admitted_clients, enrol_therapist, schedule
from tests.support.call_client import CallClient
from tests.support.clock import ShiftedClock
from tests.support.consent_calls import (
    audit,
    audit_intact,
    record_a_segment,
    recordings,
)
from tests.support.media import ColourTrack
from vsession.app import create_app
from vsession.auth import enrolment
from vsession.recording import age, library

DAY = 86400


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> ShiftedClock:
    """The in-process server, built with this clock."""
    shifted = ShiftedClock()
    monkeypatch.setattr(inprocess, "create_app", lambda settings: create_app(settings, clock=shifted))
    return shifted


async def http(origin: str, agent: Agent, method: str, path: str, body: Any = None) -> tuple[int, Any, bytes]:
    headers = {"Cookie": agent.cookie_header}
    if method == "POST":
        headers.update({"Origin": origin, "X-CSRF-Token": agent.csrf})
    payload = body if method == "POST" else None
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, origin + path, json=payload, headers=headers) as reply,
    ):
        return reply.status, reply.headers, await reply.read()


async def step_up(origin: str, therapist: Therapist, clock: ShiftedClock) -> None:
    """A fresh code, for the server's (moved on) time."""
    code = therapist.totp.at(clock.now())
    status, _, body = await http(origin, therapist.agent, "POST", "/api/step-up", {"code": code})
    assert status == 200, body


async def record(origin: str, therapist: Agent, session_id: str, client: Agent) -> None:
    """One consented segment in a real call of that therapist's session."""
    base = f"{origin.replace('http', 'ws', 1)}/ws?session={session_id}&role="
    t = CallClient(
        base + "therapist",
        {"Origin": origin, "Cookie": therapist.cookie_header},
        {"camera": ColourTrack((220, 40, 40)), "microphone": AudioStreamTrack()},
    )
    s1 = CallClient(
        base + "guest",
        {"Origin": origin, "Cookie": client.cookie_header},
        {"camera": ColourTrack((40, 200, 40)), "microphone": AudioStreamTrack()},
    )
    try:
        await t.join()
        await s1.join()
        await t.wait_for(lambda: t.frames[("s1", "camera")] >= 5 and s1.frames[("t", "camera")] >= 5)
        await record_a_segment(t, s1)
    finally:
        await t.close()
        await s1.close()


def second_therapist(origin: str, link: str) -> tuple[Therapist, str, Agent]:
    bob = enrol_therapist(origin, link, username="bob", name="Dr. Bob Example")
    session_id, links = schedule(bob, 1, title="Bob's session")
    return bob, session_id, admitted_clients(origin, bob, session_id, links)[0]


async def test_recordings_library_step_up_ownership_and_retention(
    inprocess_call: Any, clock: ShiftedClock
) -> None:
    _, recipient = age.generate_identity()
    call = await inprocess_call(clients=1, recording_recipient=recipient, retention_days=30)
    services, origin = call.services, call.origin
    ada = call.therapist
    link = await enrolment.create_link(services.auth, None, False)
    bob, bob_session, bob_client = await asyncio.to_thread(second_therapist, origin, link)
    await record(origin, ada.agent, call.session_id, call.clients[0])
    await record(origin, bob.agent, bob_session, bob_client)
    by_session = {r["session_id"]: r for r in await recordings(services)}
    mine, theirs = by_session[call.session_id], by_session[bob_session]
    assert mine["therapist_id"] != theirs["therapist_id"]
    mine_path = services.settings.data_dir / "recordings" / mine["file_name"]
    theirs_path = services.settings.data_dir / "recordings" / theirs["file_name"]
    download = f"/api/recordings/{mine['id']}/download"
    delete = f"/api/recordings/{mine['id']}/delete"

    # Each therapist lists only their own (no step-up needed to list), with the session's title
    # and people's names rather than ids, how it ended and how long it lasted.
    for who, row, title, people in (
        (ada.agent, mine, "Session", ["Dr. Ada Example", "Client 1"]),
        (bob.agent, theirs, "Bob's session", ["Dr. Bob Example", "Client 1"]),
    ):
        status, _, body = await http(origin, who, "GET", "/api/recordings")
        assert status == 200
        [listed] = json.loads(body)["recordings"]
        assert (listed["id"], listed["state"], listed["ciphertext_sha256"]) == (
            row["id"],
            "complete",
            row["ciphertext_sha256"],
        )
        assert (listed["title"], listed["people"], listed["ended"], listed["file"]) == (
            title,
            people,
            "Recording stopped by the therapist",
            "complete",
        )
        assert listed["duration_seconds"] == round(row["ended_at"] - row["started_at"], 1) > 0

    # The last TOTP is now older than step_up_minutes: download and delete ask for a fresh code.
    clock.advance(services.settings.step_up_minutes * 60 + 1)
    for method, path in (("GET", download), ("POST", delete)):
        status, _, body = await http(origin, ada.agent, method, path)
        assert status == 403, body
        assert json.loads(body)["step_up"] is True
    assert mine_path.exists()
    assert await audit(services, "recording.download") == []
    assert await audit(services, "recording.delete") == []

    await step_up(origin, ada, clock)
    status, headers, body = await http(origin, ada.agent, "GET", download)
    assert status == 200
    assert headers["Content-Type"] == "application/octet-stream"
    assert headers["Content-Disposition"].startswith("attachment")
    assert body == mine_path.read_bytes()
    assert hashlib.sha256(body).hexdigest() == mine["ciphertext_sha256"]
    [fetched] = await audit(services, "recording.download")
    assert fetched["actor"] == f"therapist:{mine['therapist_id']}"
    assert fetched["object"] == f"recording:{mine['id']}"
    assert fetched["details"] == {"ciphertext_sha256": mine["ciphertext_sha256"]}

    # Another therapist, stepped up too, cannot see it exists.
    await step_up(origin, bob, clock)
    for method, path in (("GET", download), ("POST", delete)):
        status, _, body = await http(origin, bob.agent, method, path)
        assert status == 404, body
    assert mine_path.exists()
    assert len(await audit(services, "recording.download")) == 1

    # The owner deletes it: the file goes, the row says so, and a receipt is chained.
    status, _, body = await http(origin, ada.agent, "POST", delete)
    assert status == 200, body
    assert not mine_path.exists()
    [gone] = [r for r in await recordings(services) if r["id"] == mine["id"]]
    assert gone["state"] == "deleted"
    [receipt] = await audit(services, "recording.delete")
    assert receipt["actor"] == f"therapist:{mine['therapist_id']}"
    assert receipt["object"] == f"recording:{mine['id']}"
    assert receipt["details"]["ciphertext_sha256"] == mine["ciphertext_sha256"]
    assert receipt["details"]["reason"] == "deleted by therapist"
    status, _, body = await http(origin, ada.agent, "GET", "/api/recordings")
    assert json.loads(body)["recordings"] == []
    status, _, _ = await http(origin, ada.agent, "GET", download)
    assert status == 404

    # Retention (30 days): not yet at 29 days, then deleted by the system with a receipt.
    clock.advance(29 * DAY)
    await library.apply_retention(services)
    assert theirs_path.exists()
    assert len(await audit(services, "recording.delete")) == 1
    clock.advance(1 * DAY)
    await library.apply_retention(services)
    assert not theirs_path.exists()
    receipts = await audit(services, "recording.delete")
    assert len(receipts) == 2
    expired = receipts[-1]
    assert (expired["actor"], expired["object"]) == ("system", f"recording:{theirs['id']}")
    assert expired["details"]["reason"].startswith("retention")
    assert expired["details"]["ciphertext_sha256"] == theirs["ciphertext_sha256"]
    [row] = [r for r in await recordings(services) if r["id"] == theirs["id"]]
    assert row["state"] == "deleted"
    await audit_intact(services)
