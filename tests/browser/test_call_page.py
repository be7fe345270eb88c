"""Issue 12 in real Chromium: the therapist's call page shows the session's title, and a client in
the waiting room seen (a notice, the tab's title) and heard (a Web Audio chime); the therapist lets
them in from there. Camera-off and muted show on the other side's tile, told through the server.
The pages have a heading, joining moves focus to it, and axe finds nothing on them. When the
session ends the call page says so and turns camera and microphone off."""

import re
from pathlib import Path

from playwright.sync_api import Browser, expect

from tests.support.actors import enrol_therapist, schedule
from tests.support.browser_calls import BAND, LIVE_TRACKS, band_seen, sign_in
from tests.support.call_pages import accessible, client_to_waiting_room, context_for
from tests.support.call_server import start_call_server

TITLE = "Thursday with Alice"


def test_waiting_client_admitted_from_the_call_page_and_tiles_show_mute_and_camera_off(
    browser: Browser, tmp_path: Path, artifacts: Path
) -> None:
    server = start_call_server(tmp_path)
    try:
        account = enrol_therapist(server.url, server.setup_link())
        session_id, links = schedule(account, 2, title=TITLE)
        therapist_ctx, therapist = context_for(browser, "therapist")
        client_ctx, client = context_for(browser, "client")

        sign_in(therapist, server, account)
        therapist.goto(f"{server.url}/call/{session_id}")
        expect(therapist.locator("#session-title")).to_have_text(TITLE)
        expect(therapist).to_have_title(re.compile(TITLE))
        expect(therapist.locator(".camera-select option")).not_to_have_count(0)
        accessible(therapist, "the therapist's lobby")
        therapist.click("#join-call")
        expect(therapist.locator("#call-heading")).to_be_focused()
        expect(therapist.locator("h1:visible")).to_have_text(TITLE)
        expect(therapist.locator("#stage-empty")).to_be_visible()
        expect(therapist.locator("#waiting-notice")).to_be_hidden()
        accessible(therapist, "the therapist's call page, alone")
        therapist.screenshot(path=str(artifacts / "call-page-therapist-alone.png"))

        client_to_waiting_room(client, links[0], "Alice")
        notice = therapist.locator("#waiting-notice")
        expect(notice).to_be_visible()
        expect(notice.locator("li[data-seat='1']")).to_contain_text("Alice is waiting")
        expect(therapist.locator("#waiting-announce")).to_have_text("Alice is waiting to join.")
        expect(therapist).to_have_title(re.compile(r"^\(1 waiting\) "))
        therapist.wait_for_function("() => window.tonesStarted >= 2")  # the chime, two tones
        accessible(therapist, "the therapist's call page, someone waiting")
        therapist.screenshot(path=str(artifacts / "call-page-therapist-client-waiting.png"))

        notice.locator("button.admit").click()
        expect(client.locator("#join")).to_have_attribute("data-state", "admitted")
        expect(notice).to_be_hidden()
        expect(therapist).not_to_have_title(re.compile("waiting"))
        expect(client.locator("#call-heading")).to_have_count(1)
        band_seen(client, "t", BAND["therapist"])
        band_seen(therapist, "s1", BAND["client"])
        expect(therapist.locator("#stage-empty")).to_be_hidden()
        expect(client.locator("#toggle-screen")).to_be_visible()  # getDisplayMedia is there

        # Muted and camera off: the client's own tile and buttons say so, and the therapist's tile
        # for them, as the server relays it.
        client.click("#toggle-mic")
        client.click("#toggle-camera")
        expect(client.locator("#toggle-mic")).to_have_text("Unmute")
        expect(client.locator("#toggle-camera")).to_have_text("Start video")
        tile = therapist.locator(".tile[data-peer='s1']")
        expect(tile).to_have_attribute("data-audio", "false")
        expect(tile).to_have_attribute("data-video", "false")
        expect(tile.locator(".flag")).to_have_text(["Muted", "Camera off"])
        expect(tile.locator(".camera-off")).to_be_visible()
        expect(tile.locator("video")).not_to_be_visible()
        expect(client.locator(".tile.self .flag")).to_have_text(["Muted", "Camera off"])
        accessible(therapist, "the therapist's call page, client muted with camera off")
        accessible(client, "the client's call page, muted with camera off")
        therapist.screenshot(path=str(artifacts / "call-page-therapist-client-camera-off.png"))
        client.screenshot(path=str(artifacts / "call-page-client-camera-off.png"))

        client.click("#toggle-camera")
        expect(tile).to_have_attribute("data-video", "true")
        expect(tile.locator(".flag")).to_have_text(["Muted"])
        expect(tile.locator("video")).to_be_visible()
        band_seen(therapist, "s1", BAND["client"])
        client.click("#toggle-mic")
        expect(tile).to_have_attribute("data-audio", "true")
        expect(tile.locator(".flag")).to_have_count(0)

        # The therapist's own mute reaches the client the same way.
        therapist.click("#toggle-mic")
        expect(client.locator(".tile[data-peer='t']")).to_have_attribute("data-audio", "false")

        # A second client arrives, with the microphone only: chimed in, let in, and shown to the
        # others with the camera off from the start.
        bob_ctx, bob = context_for(browser, "client")
        client_to_waiting_room(bob, links[1], "Bob", audio_only=True)
        expect(notice.locator("li[data-seat='2']")).to_contain_text("Bob is waiting")
        therapist.wait_for_function("() => window.tonesStarted >= 4")
        notice.locator("li[data-seat='2'] button.admit").click()
        expect(bob.locator("#join")).to_have_attribute("data-state", "admitted")
        expect(bob.locator("#toggle-camera")).to_have_text("No camera")
        expect(bob.locator("#toggle-camera")).to_be_disabled()
        for page in (therapist, client):
            expect(page.locator(".tile[data-peer='s2']")).to_have_attribute("data-video", "false")
            expect(page.locator(".tile[data-peer='s2'] .camera-off")).to_be_visible()
        therapist.screenshot(path=str(artifacts / "call-page-therapist-audio-only-client.png"))

        # The session ends (here from the API, as the dashboard does): the call page says so, moves
        # focus there, and its camera and microphone are off.
        account.agent.post(f"/api/sessions/{session_id}/end", {})
        expect(therapist.locator("#call-page")).to_have_attribute("data-state", "ended")
        expect(therapist.locator("#call-ended h1")).to_be_focused()
        expect(therapist.locator("#recording-indicator")).to_have_count(0)
        assert therapist.evaluate(LIVE_TRACKS) == []
        accessible(therapist, "the therapist's call page, ended")
        therapist.screenshot(path=str(artifacts / "call-page-therapist-ended.png"))
        for context in (therapist_ctx, client_ctx, bob_ctx):
            context.close()
    finally:
        server.stop()
