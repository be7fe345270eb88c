"""Issue 12 in real Chromium: the client's link opens the practice's privacy notice before anything
else; camera and microphone are asked for only when the client presses a button; the device check
shows a preview, a live microphone level, a test sound and device pickers; audio only is a clear
choice. Desktop and a 390x844 phone, screenshots of each state, axe on each."""

import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, Page, expect

from tests.support.actors import admit, enrol_therapist, schedule
from tests.support.axe import assert_accessible
from tests.support.browser_calls import (
    LIVE_TRACKS,
    MEDIA_REQUESTS,
    PHONE,
    client_through_prejoin,
    page_for,
)
from tests.support.call_server import start_call_server
from vsession.config import load_settings
from vsession.rooms import notice

PRACTICE = "Lakeside Counselling"
HEADINGS = [
    "Who runs this",
    "Where your audio and video go",
    "Recording",
    "What is kept, and for how long",
    "How to leave",
]

# Notes each tone the page starts, so the speaker test is seen to play (it has no file to fetch).
TONES_SCRIPT = """
(() => {
  window.__vsessionTones = [];
  const create = BaseAudioContext.prototype.createOscillator;
  BaseAudioContext.prototype.createOscillator = function () {
    const tone = create.call(this);
    const start = tone.start.bind(tone);
    tone.start = (...when) => {
      window.__vsessionTones.push(tone.frequency.value);
      start(...when);
    };
    return tone;
  };
})();
"""
MIC_LEVEL = "() => document.querySelector('#mic-level').value"


def read_only_rows(data_dir: Path, sql: str) -> list[tuple[Any, ...]]:
    """Rows of the running server's database, through a second, read-only connection."""
    with closing(sqlite3.connect(f"file:{data_dir / 'vsession.sqlite3'}?mode=ro", uri=True)) as db:
        return db.execute(sql).fetchall()


def shot(page: Page, artifacts: Path, name: str) -> None:
    page.screenshot(path=str(artifacts / f"{name}.png"), full_page=True)


def test_notice_first_then_devices_only_when_asked(browser: Browser, tmp_path: Path, artifacts: Path) -> None:
    server = start_call_server(tmp_path, f'practice_name = "{PRACTICE}"')
    try:
        account = enrol_therapist(server.url, server.setup_link())
        _, links = schedule(account, 2, title="First session")
        words = notice.load(load_settings(tmp_path / "vsession.toml", environ={}))
        for link, form, options in ((links[0], "desktop", {}), (links[1], "phone", PHONE)):
            context, page = page_for(browser, "client", **options)
            context.add_init_script(TONES_SCRIPT)
            page.goto(link)
            expect(page.locator("#join")).to_have_attribute("data-state", "notice")
            expect(page.locator("#practice-name")).to_have_text(PRACTICE)
            expect(page.locator("#notice-text h2")).to_have_text(HEADINGS)
            expect(page.locator("#notice-text")).to_contain_text(f"run by {PRACTICE}")
            expect(page.locator("#notice-version")).to_contain_text(words.version)
            expect(page.locator("[data-panel=notice] h1")).to_be_focused()
            page.wait_for_load_state("networkidle")
            assert page.evaluate(MEDIA_REQUESTS) == 0, "nothing asked for the camera on page load"
            assert_accessible(page, f"the privacy notice ({form})")
            shot(page, artifacts, f"prejoin-notice-{form}")

            page.click("#notice-accept")
            expect(page.locator("#join")).to_have_attribute("data-state", "devices")
            expect(page.locator("[data-panel=devices] h1")).to_be_focused()
            assert page.evaluate(MEDIA_REQUESTS) == 0, "reading the notice turns nothing on"
            assert_accessible(page, f"the device check before the choice ({form})")
            shot(page, artifacts, f"prejoin-devices-choice-{form}")

            page.click("#devices-allow")
            expect(page.locator("#camera-status")).to_have_attribute("data-state", "on")
            expect(page.locator("#microphone-status")).to_have_attribute("data-state", "on")
            page.wait_for_function("() => document.querySelector('#camera-preview').videoWidth > 0")
            # The fake microphone beeps: the meter moves with it, from the page's AnalyserNode.
            page.wait_for_function(f"() => ({MIC_LEVEL})() > 0.02", timeout=15000)
            expect(page.locator("#camera-select option")).not_to_have_count(0)
            expect(page.locator("#microphone-select option")).not_to_have_count(0)
            page.click("#speaker-test")
            assert page.evaluate("window.__vsessionTones") == [523.25, 659.25]
            expect(page.locator("#speaker-status .device-what")).to_contain_text(
                "Did you hear a short chime?"
            )
            expect(page.locator("#devices-retry")).to_be_hidden()
            assert sorted(page.evaluate(LIVE_TRACKS)) == ["audio", "video"]
            assert_accessible(page, f"the device check with both devices on ({form})")
            shot(page, artifacts, f"prejoin-devices-on-{form}")

            page.click("#devices-continue")
            expect(page.locator("#join")).to_have_attribute("data-state", "joined")
            expect(page.locator("#welcome")).to_have_text("Welcome to “First session”")
            assert_accessible(page, f"the name form ({form})")
            shot(page, artifacts, f"prejoin-name-{form}")
            context.close()

        # The server kept each acknowledgement with the words' version and hash, and audited it.
        rows = read_only_rows(server.data_dir, "SELECT seat, notice_version, notice_sha256 FROM notice_acks")
        assert sorted(rows) == [(1, words.version, words.sha256), (2, words.version, words.sha256)]
        entries = read_only_rows(
            server.data_dir, "SELECT actor FROM audit_log WHERE action = 'notice.acknowledge'"
        )
        assert len(entries) == 2
    finally:
        server.stop()


def test_another_microphone_can_be_chosen(browser: Browser, tmp_path: Path) -> None:
    server = start_call_server(tmp_path)
    try:
        account = enrol_therapist(server.url, server.setup_link())
        _, links = schedule(account, 1)
        context, page = page_for(browser, "client")
        page.goto(links[0])
        page.click("#notice-accept")
        page.click("#devices-allow")
        expect(page.locator("#microphone-status")).to_have_attribute("data-state", "on")
        options = page.locator("#microphone-select option")
        expect(options).not_to_have_count(0)
        chosen = options.nth(options.count() - 1).get_attribute("value")
        first = page.evaluate("() => window.__vsessionTracks.find((t) => t.kind === 'audio').id")
        page.select_option("#microphone-select", chosen)
        page.wait_for_function(
            "(first) => window.__vsessionTracks.some((t) => t.kind === 'audio' && t.id !== first)", arg=first
        )
        expect(page.locator("#microphone-status")).to_have_attribute("data-state", "on")
        # The first microphone is let go; exactly one of each is live.
        assert sorted(page.evaluate(LIVE_TRACKS)) == ["audio", "video"]
        page.wait_for_function(f"() => ({MIC_LEVEL})() > 0.02", timeout=15000)
        context.close()
    finally:
        server.stop()


def test_audio_only_is_a_clear_choice_all_the_way_into_the_call(
    browser: Browser, tmp_path: Path, artifacts: Path
) -> None:
    server = start_call_server(tmp_path)
    try:
        account = enrol_therapist(server.url, server.setup_link())
        sid, links = schedule(account, 1)
        context, page = page_for(browser, "client", **PHONE)
        page.goto(links[0])
        page.click("#notice-accept")
        page.click("#join-audio-only")
        expect(page.locator("#camera-status")).to_have_attribute("data-state", "off")
        expect(page.locator("#camera-status .device-what")).to_have_text(
            "Camera off: you chose audio only. The others will hear you but not see you."
        )
        expect(page.locator("#microphone-status")).to_have_attribute("data-state", "on")
        expect(page.locator("#camera-preview")).to_be_hidden()
        expect(page.locator("#devices-allow")).to_have_text("Turn on my camera too")
        assert page.evaluate(LIVE_TRACKS) == ["audio"]
        requests: list[dict[str, Any]] = page.evaluate("window.__vsessionMediaRequests")
        assert requests and all("video" not in r for r in requests), requests
        assert_accessible(page, "the device check, audio only (phone)")
        shot(page, artifacts, "prejoin-audio-only-phone")
        page.set_viewport_size({"width": 1280, "height": 800})
        shot(page, artifacts, "prejoin-audio-only-desktop")
        page.click("#devices-continue")
        page.fill("#name", "Sam")
        page.click("#name-form button[type=submit]")
        expect(page.locator("#join")).to_have_attribute("data-state", "waiting")
        admit(account, sid, 1)
        expect(page.locator("#join")).to_have_attribute("data-state", "admitted")
        expect(page.locator("#call-state")).to_have_attribute("data-state", "connected", timeout=20000)
        assert page.evaluate(LIVE_TRACKS) == ["audio"]
        assert all("video" not in r for r in page.evaluate("window.__vsessionMediaRequests"))
        context.close()
    finally:
        server.stop()


def test_the_walk_helper_reaches_the_name_form(browser: Browser, tmp_path: Path) -> None:
    """client_through_prejoin, as other tests use it, in both of its forms."""
    server = start_call_server(tmp_path)
    try:
        account = enrol_therapist(server.url, server.setup_link())
        _, links = schedule(account, 2)
        for link, audio_only in ((links[0], False), (links[1], True)):
            context, page = page_for(browser, "client")
            page.goto(link)
            client_through_prejoin(page, audio_only=audio_only)
            kinds = sorted(page.evaluate(LIVE_TRACKS))
            assert kinds == (["audio"] if audio_only else ["audio", "video"])
            context.close()
    finally:
        server.stop()
