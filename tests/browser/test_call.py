"""Issue 5 in real Chromium: therapist and client in two browser contexts, through the server's SFU.
Each page draws a coloured band on its camera before sending; each must receive the other's band.
Also: frames keep being decoded, chat arrives, a screen share arrives as an extra track, and a
reloaded client page reconnects on its own."""

from pathlib import Path

from playwright.sync_api import Browser, expect

from tests.support.browser_calls import BAND, band_seen, frames_rise, two_party_call
from tests.support.call_server import start_call_server


def test_two_party_call_in_chromium(browser: Browser, tmp_path: Path, artifacts: Path) -> None:
    server = start_call_server(tmp_path)
    try:
        account, _, therapist, client, contexts = two_party_call(browser, server, "Call test")
        expect(therapist.locator(".tile[data-peer='s1'] .name")).to_have_text("Alice")
        expect(client.locator(".tile[data-peer='t'] .name")).to_have_text(account.name)
        frames_rise(client)
        frames_rise(therapist)
        expect(client.locator("#call-state")).to_have_text("Connected")
        expect(client.locator("#recording-indicator")).to_have_attribute("data-state", "stopped")

        client.fill("#chat-input", "Hello from Alice")
        client.click("#chat-form button[type=submit]")
        expect(therapist.locator("#chat-log li")).to_contain_text("Hello from Alice")

        client.click("#toggle-mic")
        expect(therapist.locator(".tile[data-peer='s1']")).to_have_attribute("data-audio", "false")

        therapist.click("#toggle-screen")
        expect(client.locator(".tile[data-peer='t'][data-source='screen']")).to_be_visible()
        client.wait_for_function(
            "() => document.querySelector(\".tile[data-source='screen'] video\")?.videoWidth > 0",
            timeout=20000,
        )
        therapist.screenshot(path=str(artifacts / "call-therapist.png"))
        client.screenshot(path=str(artifacts / "call-client.png"))

        client.reload()
        expect(client.locator("#join")).to_have_attribute("data-state", "admitted")
        band_seen(client, "t", BAND["therapist"])
        band_seen(therapist, "s1", BAND["client"])
        frames_rise(client)
        client.screenshot(path=str(artifacts / "call-client-after-reload.png"))
        for context in contexts:
            context.close()
    finally:
        server.stop()
