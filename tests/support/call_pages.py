"""Browser tests of the call pages (web/js/call.js): a therapist who opens the call page first and
lets the client in from there, on desktop or on a phone-sized touch screen, and the walk through
every recording state both pages must put in words."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.support.actors import Therapist, enrol_therapist, schedule
from tests.support.axe import violations
from tests.support.browser_calls import BAND, PHONE, band_seen, client_through_prejoin, page_for, sign_in
from tests.support.live_server import LiveServer

PATIENCE = 20000  # ms: a call's media, a reconnect's back-off

# Counts the tones the page really starts with Web Audio (the waiting-room chime).
COUNT_TONES = """
(() => {
  window.tonesStarted = 0;
  const start = OscillatorNode.prototype.start;
  OscillatorNode.prototype.start = function (...args) {
    window.tonesStarted += 1;
    return start.apply(this, args);
  };
})();
"""
# A phone browser: no screen capture API at all.
NO_SCREEN_CAPTURE = "delete MediaDevices.prototype.getDisplayMedia;"


@dataclass
class CallPages:
    account: Therapist
    session_id: str
    therapist: Page
    client: Page
    contexts: list[BrowserContext]

    def close(self) -> None:
        for context in self.contexts:
            context.close()


def context_for(browser: Browser, role: str, phone: bool = False) -> tuple[BrowserContext, Page]:
    context, page = page_for(browser, role, **(PHONE if phone else {}))
    context.add_init_script(COUNT_TONES)
    if phone:
        context.add_init_script(NO_SCREEN_CAPTURE)
    return context, page


def client_to_waiting_room(page: Page, link: str, name: str, audio_only: bool = False) -> None:
    """From the link to the waiting room, through the privacy notice and the device check."""
    page.goto(link)
    client_through_prejoin(page, audio_only=audio_only)
    page.fill("#name", name)
    page.click("#name-form button[type=submit]")
    expect(page.locator("#join")).to_have_attribute("data-state", "waiting")


def therapist_joins(page: Page, server: LiveServer, account: Therapist, session_id: str) -> None:
    sign_in(page, server, account)
    page.goto(f"{server.url}/call/{session_id}")
    expect(page.locator(".camera-select option")).not_to_have_count(0)
    page.click("#join-call")
    expect(page.locator("#call-state")).not_to_have_text("Connecting…")


def admitted_from_call_page(
    browser: Browser,
    server: LiveServer,
    title: str,
    phone: bool = False,
    name: str = "Alice",
    shot: Path | None = None,
) -> CallPages:
    """The therapist joins the call first; the client waits; the therapist lets them in from the
    call page, which shows the waiting client and chimes. `shot`: a screenshot of that notice."""
    account = enrol_therapist(server.url, server.setup_link())
    session_id, links = schedule(account, 1, title=title)
    therapist_ctx, therapist = context_for(browser, "therapist", phone)
    client_ctx, client = context_for(browser, "client", phone)
    therapist_joins(therapist, server, account, session_id)
    client_to_waiting_room(client, links[0], name)
    notice = therapist.locator("#waiting-notice")
    expect(notice).to_be_visible()
    expect(notice.locator("li[data-seat='1']")).to_contain_text(f"{name} is waiting")
    therapist.wait_for_function("() => window.tonesStarted >= 2")
    if shot is not None:
        therapist.screenshot(path=str(shot))
    notice.locator("button.admit").click()
    expect(client.locator("#join")).to_have_attribute("data-state", "admitted")
    expect(notice).to_be_hidden()
    band_seen(client, "t", BAND["therapist"])
    band_seen(therapist, "s1", BAND["client"])
    return CallPages(account, session_id, therapist, client, [therapist_ctx, client_ctx])


def indicator(page: Page) -> Any:
    return page.locator("#recording-indicator")


def accessible(page: Page, what: str) -> None:
    found = violations(page)
    assert not found, f"axe found on {what}:\n" + "\n".join(found)


def walk_recording_states(
    therapist: Page, client: Page, client_name: str, seen: Callable[[str], None]
) -> None:
    """Every recording state, in words on both pages, from the recorder's real state. `seen(state)`
    runs at each (screenshots); axe finds nothing on either page in any of them."""
    record = therapist.locator("#record-toggle")

    def both(therapist_words: str, client_words: str, state: str) -> None:
        expect(indicator(therapist)).to_have_text(therapist_words, timeout=PATIENCE)
        expect(indicator(client)).to_have_text(client_words, timeout=PATIENCE)
        for page in (therapist, client):
            expect(page.locator("body")).not_to_contain_text("paused")
        accessible(therapist, f"the therapist's call page, {state}")
        accessible(client, f"the client's call page, {state}")
        seen(state)

    both("Not recording", "Not recording", "not-recording")
    expect(record).to_have_text("Ask to record")

    record.click()
    dialog = client.locator("#consent-dialog")
    expect(dialog).to_be_visible()
    # The dialog takes focus, on its question rather than on a button Enter would press.
    expect(client.locator("#consent-title")).to_be_focused()
    # No stop button for a recording that does not exist.
    expect(record).to_have_text("Cancel the recording request")
    both(
        f"Asking everyone for consent (waiting for: {client_name})",
        "Asking everyone for consent (waiting for: you)",
        "asking",
    )

    client.click("#consent-decline")
    expect(dialog).to_be_hidden()
    both(f"Not recording: {client_name} declined", "Not recording: you declined", "declined")
    expect(record).to_have_text("Cancel the recording request")

    therapist.click("#record-ask-again")
    expect(dialog).to_be_visible()
    expect(client.locator("#consent-title")).to_be_focused()
    both(
        f"Asking everyone for consent (waiting for: {client_name})",
        "Asking everyone for consent (waiting for: you)",
        "asked-again",
    )

    client.click("#consent-accept")
    both("Recording", "Recording", "recording")
    expect(record).to_have_text("Stop recording")
    expect(client.locator("#withdraw-consent")).to_have_text("Stop recording me")

    client.click("#withdraw-consent")
    both(
        f"Not recording: {client_name} withdrew consent",
        "Not recording: you withdrew consent",
        "withdrew",
    )
    expect(record).to_have_text("Cancel the recording request")
    expect(client.locator("#withdraw-consent")).to_be_hidden()

    record.click()
    both("Recording stopped", "Recording stopped", "stopped")
    expect(record).to_have_text("Ask to record")
