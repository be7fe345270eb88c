"""Issue 12 in real Chromium: both pages put the recorder's real state in words, the same sentence
naming the same person (the client reads "you"), through every state: not recording, asking,
declined, asked again, recording, withdrew, stopped. Never "paused", no stop button while nothing
is recorded, the consent dialog takes focus, the indicator is a live region, and axe finds nothing.
While the server is down the pages say they cannot confirm the state instead of showing the last
one; once it is back they say what the new server says, and a client's mute still shows."""

from pathlib import Path

from playwright.sync_api import Browser, expect

from tests.support.browser_calls import two_party_call
from tests.support.call_pages import PATIENCE, indicator, walk_recording_states
from tests.support.call_server import start_call_server
from tests.support.live_server import LiveServer, start_server
from vsession.recording import age

UNCONFIRMED = "Cannot confirm the recording state right now"


def test_recording_state_in_words_and_unconfirmed_in_an_outage(
    browser: Browser, tmp_path: Path, artifacts: Path
) -> None:
    _, recipient = age.generate_identity()
    server = start_call_server(tmp_path, f'recording_recipient = "{recipient}"')
    restarted: LiveServer | None = None
    try:
        _, _, therapist, client, contexts = two_party_call(browser, server, "Recording words")
        for page in (therapist, client):
            expect(indicator(page)).to_have_attribute("role", "status")
            expect(indicator(page)).to_have_attribute("aria-live", "polite")

        def seen(state: str) -> None:
            therapist.screenshot(path=str(artifacts / f"recording-desktop-therapist-{state}.png"))
            client.screenshot(path=str(artifacts / f"recording-desktop-client-{state}.png"))

        walk_recording_states(therapist, client, "Alice", seen)

        client.click("#toggle-mic")
        expect(therapist.locator(".tile[data-peer='s1']")).to_have_attribute("data-audio", "false")
        port = server.url.rsplit(":", 1)[1]
        server.stop()
        for page in (therapist, client):
            expect(indicator(page)).to_have_text(UNCONFIRMED)
            expect(indicator(page)).to_have_attribute("data-status", "unknown")
        expect(therapist.locator("#record-toggle")).to_be_disabled()
        seen("outage")

        config = tmp_path / "vsession.toml"
        restarted = start_server(tmp_path / "data", "--config", str(config), "--port", port)
        for page in (therapist, client):
            expect(indicator(page)).to_have_text("Not recording", timeout=PATIENCE)
        expect(therapist.locator("#record-toggle")).to_be_enabled()
        # The new server starts everyone unmuted; the client's page puts it right.
        expect(therapist.locator(".tile[data-peer='s1']")).to_have_attribute(
            "data-audio", "false", timeout=PATIENCE
        )
        seen("after-restart")
        for context in contexts:
            context.close()
    finally:
        server.stop()
        if restarted is not None:
            restarted.stop()
