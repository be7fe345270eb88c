"""The therapist's recordings page in real Chromium (issue 12): the session's title and people's
names instead of ids, how each recording ended in plain words, its length, and whether the file is
complete or truncated. The recordings come from a real call (aiortc peers in a thread of their
own, against a live `vsession serve`): Sam withdraws, the therapist stops, then the server is
killed (kill -9) mid-recording and started again, which salvages that file as truncated. After
retention erases the client's name, the page names the seat instead. axe checks every state."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from aiortc import AudioStreamTrack
from playwright.sync_api import Browser, Page, expect

from tests.support.actors import Agent, Therapist, admit, client_waits, enrol_therapist, schedule
from tests.support.axe import assert_accessible
from tests.support.browser_calls import sign_in
from tests.support.call_client import CallClient
from tests.support.call_server import start_call_server
from tests.support.consent_calls import (
    messages,
    record_with_consent,
    wait_state,
    withdraw_then_agree_again,
)
from tests.support.live_server import LiveServer
from tests.support.media import ColourTrack
from vsession.recording import age
from vsession.store import therapy_sessions
from vsession.store.db import Database

T = TypeVar("T")
PHONE: dict[str, Any] = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}


def in_thread(work: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run async work on a loop of its own: Playwright's sync API holds this thread's loop."""
    result: list[T] = []
    failure: list[BaseException] = []

    def run() -> None:
        try:
            result.append(asyncio.run(work()))
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return result[0]


@dataclass
class Practice:
    therapist: Therapist
    session_id: str
    sam: Agent

    def peer(self, server: LiveServer, agent: Agent, role: str, colour: tuple[int, int, int]) -> CallClient:
        url = f"{server.url.replace('http', 'ws', 1)}/ws?role={role}&session={self.session_id}"
        tracks = {"camera": ColourTrack(colour), "microphone": AudioStreamTrack()}
        return CallClient(url, {"Origin": server.url, "Cookie": agent.cookie_header}, tracks)


async def media_flows(therapist: CallClient, frames: int = 45) -> None:
    target = therapist.frames[("s1", "camera")] + frames
    await therapist.wait_for(lambda: therapist.frames[("s1", "camera")] >= target, patience=30)


async def record_then_crash(server: LiveServer, practice: Practice) -> None:
    """Three segments: Sam withdraws; asked again, Sam agrees and the therapist stops; a third is
    being written when the server is killed."""
    therapist = practice.peer(server, practice.therapist.agent, "therapist", (220, 40, 40))
    sam = practice.peer(server, practice.sam, "guest", (40, 200, 40))
    try:
        for peer in (therapist, sam):
            await peer.join()
        await therapist.wait_for(
            lambda: therapist.frames[("s1", "camera")] >= 5 and sam.frames[("t", "camera")] >= 5, patience=30
        )
        await record_with_consent(therapist, sam)
        await media_flows(therapist)
        await withdraw_then_agree_again(therapist, sam)
        await media_flows(therapist)
        await therapist.send({"type": "record", "action": "stop"})
        await wait_state(therapist, "stopped")
        await record_with_consent(therapist, sam, len(messages(sam, "consent_prompt")))
        await media_flows(therapist, 90)
        server.process.kill()  # SIGKILL mid-recording: no cleanup of any kind
        server.process.wait()
    finally:
        await therapist.close()
        await sam.close()


async def erase_names_later(data_dir: Path) -> None:
    """What retention does once the session is over and its grace period has passed (the clock
    moved on: a cut-off an hour from now)."""
    db = await Database.open(data_dir / "vsession.sqlite3")
    try:
        async with db.transaction() as tx:
            assert await therapy_sessions.erase_names(tx, time.time() + 3600) == 1
    finally:
        await db.close()


def cards(page: Page) -> list[dict[str, str]]:
    return page.evaluate(
        """() => [...document.querySelectorAll("article.recording")].map((card) => ({
          title: card.querySelector("h2").textContent,
          people: card.querySelector("[data-fact=people]").textContent,
          ended: card.querySelector("[data-fact=ended]").textContent,
          file: card.dataset.file,
          length: card.querySelector("[data-fact=length]").textContent,
        }))"""
    )


def test_recordings_page_in_plain_words(browser: Browser, tmp_path: Path, artifacts: Path) -> None:
    _, recipient = age.generate_identity()
    settings = f'recording_recipient = "{recipient}"'
    first = start_call_server(tmp_path, settings)
    try:
        therapist = enrol_therapist(first.url, first.setup_link())
        session_id, [link] = schedule(therapist, 1, title="Weekly session")
        sam = client_waits(first.url, link, "Sam")
        admit(therapist, session_id, 1)
        practice = Practice(therapist, session_id, sam)
        in_thread(lambda: record_then_crash(first, practice))
    finally:
        first.stop()

    server = start_call_server(tmp_path, settings)
    try:
        context = browser.new_context()
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        sign_in(page, server, therapist)
        page.goto(server.url + "/recordings")
        expect(page.locator("article.recording")).to_have_count(3)
        # Newest first: the one the crash cut off, then the therapist's stop, then Sam's withdrawal.
        shown = cards(page)
        assert [(c["title"], c["people"], c["ended"], c["file"]) for c in shown] == [
            ("Weekly session", "Dr. Ada Example, Sam", "Server restarted", "truncated"),
            ("Weekly session", "Dr. Ada Example, Sam", "Recording stopped by the therapist", "complete"),
            ("Weekly session", "Dr. Ada Example, Sam", "Sam withdrew consent", "complete"),
        ], shown
        assert all(c["length"].endswith(" s") for c in shown), shown
        expect(page.locator("article[data-file=truncated] .file-state")).to_contain_text("Truncated")
        expect(page.locator("article[data-file=complete] .file-state").first).to_have_text("Complete")
        # No internal ids anywhere a therapist reads.
        text = page.locator("main").inner_text()
        assert session_id not in text and "s1" not in text.split(), text
        assert_accessible(page, "the recordings page")
        page.screenshot(path=str(artifacts / "recordings-page.png"), full_page=True)

        phone = browser.new_context(storage_state=context.storage_state(), **PHONE)
        small = phone.new_page()
        small.goto(server.url + "/recordings")
        expect(small.locator("article.recording")).to_have_count(3)
        assert_accessible(small, "the recordings page on a phone")
        small.screenshot(path=str(artifacts / "recordings-page-phone.png"), full_page=True)
        phone.close()

        # The session ends; later, retention erases Sam's name: the seat is named instead.
        ender = Agent(server.url, dict(therapist.agent.cookies), therapist.agent.csrf)
        ender.post(f"/api/sessions/{session_id}/end", {})
    finally:
        server.stop()
    in_thread(lambda: erase_names_later(server.data_dir))
    again = start_call_server(tmp_path, settings)
    try:
        page.goto(again.url + "/recordings")
        expect(page.locator("article.recording")).to_have_count(3)
        assert [(c["people"], c["ended"]) for c in cards(page)] == [
            ("Dr. Ada Example, Client (seat 1)", "Server restarted"),
            ("Dr. Ada Example, Client (seat 1)", "Recording stopped by the therapist"),
            ("Dr. Ada Example, Client (seat 1)", "Client (seat 1) withdrew consent"),
        ]
        assert "Sam" not in page.locator("main").inner_text()
        assert_accessible(page, "the recordings page after names were erased")
        page.screenshot(path=str(artifacts / "recordings-page-names-erased.png"), full_page=True)
        assert errors == []
        context.close()
    finally:
        again.stop()
