"""Issue 12 in real Chromium: camera and microphone refused for real (a Chromium that asks, with
nothing granted) or missing for real (Chromium's fake capture with no camera). Each device says what
happened and how to allow it in this browser; Try again works once the permission is given; the
client can always go on. The Firefox and Safari wordings are checked on the page's own module."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.support.actors import enrol_therapist, schedule
from tests.support.axe import assert_accessible
from tests.support.browser_calls import ANDROID_CHROME, LIVE_TRACKS, PHONE, launch_chromium, page_for
from tests.support.call_server import start_call_server
from tests.support.live_server import LiveServer


@pytest.fixture(scope="module")
def asking(browser: Browser) -> Iterator[Browser]:
    """A Chromium that gives out camera and microphone only where a context granted them."""
    other = launch_chromium(browser, asks=True)
    yield other
    other.close()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    started = start_call_server(tmp_path)
    yield started
    started.stop()


def links(server: LiveServer, count: int) -> list[str]:
    account = enrol_therapist(server.url, server.setup_link())
    return schedule(account, count)[1]


def to_device_check(page: Page, link: str) -> None:
    page.goto(link)
    page.click("#notice-accept")
    expect(page.locator("#join")).to_have_attribute("data-state", "devices")


def test_refused_devices_say_how_to_allow_them_and_try_again_works(
    asking: Browser, server: LiveServer, artifacts: Path
) -> None:
    first, second = links(server, 2)
    for link, form, options in (
        (first, "desktop", {}),
        (second, "phone", {**PHONE, "user_agent": ANDROID_CHROME}),
    ):
        context = asking.new_context(**options)  # nothing granted
        page = context.new_page()
        to_device_check(page, link)
        page.click("#devices-allow")
        for source, noun in (("camera", "Camera"), ("microphone", "Microphone")):
            box = page.locator(f"#{source}-status")
            expect(box).to_have_attribute("data-state", "denied")
            expect(box.locator(".device-what")).to_have_text(f"Your {source} is blocked for this page.")
            if form == "desktop":
                expect(box.locator(".device-how")).to_contain_text(
                    "Click the icon at the left of the address bar (a lock or two sliders), "
                    f"set {noun} to Allow"
                )
                expect(box.locator(".device-how")).to_contain_text("computer's privacy settings")
            else:
                expect(box.locator(".device-how")).to_contain_text(
                    f"Tap the icon at the left of the address bar, then Permissions, and allow the {source}"
                )
                expect(box.locator(".device-how")).to_contain_text("phone's Settings app")
        expect(page.locator("#devices-retry")).to_be_visible()
        expect(page.locator("#devices-retry")).to_be_focused()
        expect(page.locator("#devices-continue")).to_have_text("Continue anyway")
        expect(page.locator("#camera-preview")).to_be_hidden()
        expect(page.locator("#mic-level")).to_be_hidden()
        expect(page.locator("#camera-select")).to_be_hidden()
        assert_accessible(page, f"the device check with both devices refused ({form})")
        page.screenshot(path=str(artifacts / f"prejoin-denied-{form}.png"), full_page=True)

        # The person allows them in the browser and tries again: the same page now has both.
        context.grant_permissions(["camera", "microphone"], origin=server.url)
        page.click("#devices-retry")
        expect(page.locator("#camera-status")).to_have_attribute("data-state", "on")
        expect(page.locator("#microphone-status")).to_have_attribute("data-state", "on")
        expect(page.locator("#camera-status .device-how")).to_have_text("")
        expect(page.locator("#devices-retry")).to_be_hidden()
        expect(page.locator("#devices-continue")).to_have_text("Continue")
        page.wait_for_function("() => document.querySelector('#camera-preview').videoWidth > 0")
        expect(page.locator("#mic-level")).to_be_visible()
        context.close()


def test_a_refused_camera_alone_leaves_the_microphone_working(asking: Browser, server: LiveServer) -> None:
    (link,) = links(server, 1)
    context = asking.new_context()
    context.grant_permissions(["microphone"], origin=server.url)
    page = context.new_page()
    to_device_check(page, link)
    page.click("#devices-allow")
    expect(page.locator("#camera-status")).to_have_attribute("data-state", "denied")
    expect(page.locator("#microphone-status")).to_have_attribute("data-state", "on")
    expect(page.locator("#devices-summary")).to_have_text(
        "You can continue anyway: the others will hear you but not see you."
    )
    page.click("#devices-continue")
    expect(page.locator("#join")).to_have_attribute("data-state", "joined")
    context.close()


def test_a_missing_camera_is_named_and_audio_only_offered(
    browser: Browser, server: LiveServer, artifacts: Path
) -> None:
    (link,) = links(server, 1)
    cameraless = launch_chromium(browser, asks=False, fake_devices="device-count=0")
    try:
        _, page = page_for(cameraless, "client")
        to_device_check(page, link)
        page.click("#devices-allow")
        camera = page.locator("#camera-status")
        expect(camera).to_have_attribute("data-state", "missing")
        expect(camera.locator(".device-what")).to_have_text("No camera was found.")
        expect(camera.locator(".device-how")).to_contain_text("check that it is connected and switched on")
        expect(camera.locator(".device-how")).to_contain_text("You can also join with audio only.")
        expect(page.locator("#microphone-status")).to_have_attribute("data-state", "on")
        assert page.evaluate(LIVE_TRACKS) == ["audio"]
        assert_accessible(page, "the device check with no camera")
        page.screenshot(path=str(artifacts / "prejoin-no-camera-desktop.png"), full_page=True)
        page.set_viewport_size(PHONE["viewport"])
        page.screenshot(path=str(artifacts / "prejoin-no-camera-phone.png"), full_page=True)
        page.click("#join-audio-only")
        expect(camera).to_have_attribute("data-state", "off")
        expect(page.locator("#devices-continue")).to_have_text("Continue")
        page.click("#devices-continue")
        expect(page.locator("#join")).to_have_attribute("data-state", "joined")
    finally:
        cameraless.close()


WORDING = """async (ua) => {
  const help = await import("/static/js/devicehelp.js");
  const browser = help.browserOf(ua);
  const denied = help.howToFix("camera", "denied", browser);
  return [browser.name, denied, help.howToFix("microphone", "busy", browser)];
}"""
UAS = {
    "firefox": "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    "safari": (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/17.5 Safari/605.1.15"
    ),
    "iphone": (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/17.5 Mobile/15E148 Safari/604.1"
    ),
}


def test_each_browser_gets_its_own_steps(browser: Browser, server: LiveServer) -> None:
    page = browser.new_page()
    page.goto(server.url + "/")
    name, denied, busy = page.evaluate(WORDING, UAS["firefox"])
    assert name == "firefox"
    assert denied.startswith("Click the crossed-out camera icon in the address bar, remove the block")
    assert "another video call" in busy
    name, denied, _ = page.evaluate(WORDING, UAS["safari"])
    assert name == "safari"
    assert denied.startswith("In the Safari menu choose Settings for This Website, set Camera to Allow")
    name, denied, _ = page.evaluate(WORDING, UAS["iphone"])
    assert name == "safari"
    assert denied.startswith("Tap “aA” in the address bar, then Website Settings, set Camera to Allow")
    assert "phone's Settings app" in denied
    page.close()
