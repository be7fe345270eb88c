"""Issue 12 on a phone-sized touch screen (390x844, mobile, touch) in real Chromium, for the client
and the therapist: the other person is the main view, oneself a small corner, and mute, camera and
leave stay on screen without scrolling; no screen-share button where the browser has no
getDisplayMedia; the chat panel takes the stage's place and moves focus there and back; every
recording state in words on both phones, with screenshots."""

from pathlib import Path

from playwright.sync_api import Browser, Page, expect

from tests.support.browser_calls import PHONE
from tests.support.call_pages import admitted_from_call_page, walk_recording_states
from tests.support.call_server import start_call_server
from vsession.recording import age

WIDTH, HEIGHT = PHONE["viewport"]["width"], PHONE["viewport"]["height"]
REACHABLE = """(selector) => {
  const box = document.querySelector(selector).getBoundingClientRect();
  const hit = document.elementFromPoint(box.x + box.width / 2, box.y + box.height / 2);
  return Boolean(hit && hit.closest(selector));
}"""


def on_screen(page: Page, selector: str) -> None:
    box = page.locator(selector).bounding_box()
    assert box is not None, selector
    assert box["x"] >= 0 and box["y"] >= 0, (selector, box)
    assert box["x"] + box["width"] <= WIDTH and box["y"] + box["height"] <= HEIGHT, (selector, box)
    assert page.evaluate(REACHABLE, selector), f"{selector} is covered"


def phone_layout(page: Page) -> None:
    expect(page.locator("#toggle-screen")).to_have_count(0)
    remote = page.locator(".tile:not(.self)").first.bounding_box()
    own = page.locator(".tile.self").bounding_box()
    assert remote is not None and own is not None
    assert remote["width"] >= 0.9 * WIDTH and remote["height"] >= 0.4 * HEIGHT, remote
    assert own["width"] * own["height"] * 6 < remote["width"] * remote["height"], (own, remote)
    for selector in ("#toggle-mic", "#toggle-camera", "#leave", ".tile.self"):
        on_screen(page, selector)
    assert page.evaluate("() => window.scrollY") == 0


def test_phone_call_layout_controls_and_recording_words(
    browser: Browser, tmp_path: Path, artifacts: Path
) -> None:
    _, recipient = age.generate_identity()
    server = start_call_server(tmp_path, f'recording_recipient = "{recipient}"')
    try:
        waiting = artifacts / "phone-therapist-client-waiting.png"
        pages = admitted_from_call_page(browser, server, "Phone session", phone=True, shot=waiting)
        therapist, client = pages.therapist, pages.client
        for role, page in (("therapist", therapist), ("client", client)):
            phone_layout(page)
            page.screenshot(path=str(artifacts / f"phone-{role}-call.png"))

        # A tap mutes; the therapist's phone shows it on the client's tile.
        client.tap("#toggle-mic")
        expect(therapist.locator(".tile[data-peer='s1']")).to_have_attribute("data-audio", "false")
        client.tap("#toggle-mic")
        expect(therapist.locator(".tile[data-peer='s1']")).to_have_attribute("data-audio", "true")

        # Chat takes the stage's place, the controls stay, focus goes there and comes back.
        client.tap("#toggle-side")
        expect(client.locator("#chat-heading")).to_be_focused()
        expect(client.locator("#chat-input")).to_be_visible()
        for selector in ("#toggle-mic", "#leave"):
            on_screen(client, selector)
        client.screenshot(path=str(artifacts / "phone-client-chat.png"))
        client.tap("#close-side")
        expect(client.locator("#toggle-side")).to_be_focused()
        phone_layout(client)

        def seen(state: str) -> None:
            therapist.screenshot(path=str(artifacts / f"recording-phone-therapist-{state}.png"))
            client.screenshot(path=str(artifacts / f"recording-phone-client-{state}.png"))
            on_screen(therapist, "#leave")

        walk_recording_states(therapist, client, "Alice", seen)
        pages.close()
    finally:
        server.stop()
