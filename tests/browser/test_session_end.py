"""Issue 12 in real Chromium, after the session: when the client leaves or the therapist ends the
session, the page stops every camera and microphone track, has the server drop its guest cookie (the
old cookie no longer works), and shows a calm page saying nothing more is kept in this browser.
Neither the back and forward buttons nor opening the page again bring the call or the camera back."""

import json
import urllib.error
import urllib.request
from pathlib import Path

from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.support.actors import admit, enrol_therapist, schedule
from tests.support.axe import assert_accessible
from tests.support.browser_calls import (
    LIVE_TRACKS,
    MEDIA_REQUESTS,
    PHONE,
    client_through_prejoin,
    page_for,
    two_party_call,
)
from tests.support.call_server import start_call_server
from tests.support.live_server import LiveServer
from vsession.rooms.invites import GUEST_COOKIE

KEPT_NOTHING = (
    "Your camera and microphone are off, and nothing more from this session is kept in this browser."
)
ALL_STOPPED = """() => window.__vsessionTracks.length > 0
  && window.__vsessionTracks.every((t) => t.readyState === 'ended')"""


def guest_cookie(context: BrowserContext) -> str | None:
    return next((c["value"] for c in context.cookies() if c["name"] == GUEST_COOKIE), None)


def status_with(server: LiveServer, sid: str, cookie: str) -> int:
    """The status of GET /api/join/<sid> sent with this cookie, as any client could send it."""
    request = urllib.request.Request(
        f"{server.url}/api/join/{sid}",
        headers={"Cookie": f"{GUEST_COOKIE}={cookie}", "Accept": "application/json"},
    )
    try:
        with urllib.request.urlopen(request) as response:
            json.loads(response.read())
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def nothing_comes_back(page: Page, server: LiveServer, sid: str, ending: str) -> None:
    """After the end: back, forward, reload and the plain join address show no call and ask for no
    camera or microphone."""
    expect(page).to_have_url(f"{server.url}/j/{sid}/{ending}")
    page.go_back()
    expect(page).to_have_url(f"{server.url}/")
    assert page.locator("#join").count() == 0
    page.go_forward()
    expect(page).to_have_url(f"{server.url}/j/{sid}/{ending}")
    expect(page.locator("#join")).to_have_attribute("data-state", ending)
    expect(page.locator(f"[data-panel={ending}] .kept-nothing")).to_have_text(KEPT_NOTHING)
    # Back from the cache or loaded again: either way no track is live and no call is on screen.
    assert page.evaluate(LIVE_TRACKS) == []
    expect(page.locator("#call-slot")).to_be_empty()
    page.reload()
    expect(page.locator("#join")).to_have_attribute("data-state", ending)
    page.wait_for_load_state("networkidle")
    assert page.evaluate(MEDIA_REQUESTS) == 0
    page.goto(f"{server.url}/j/{sid}")
    expect(page.locator("#join")).to_have_attribute("data-state", "problem")
    expect(page.locator("#problem-text")).to_have_text("Please open the link your therapist sent you.")
    page.wait_for_load_state("networkidle")
    assert page.evaluate(MEDIA_REQUESTS) == 0


def test_leaving_the_call_leaves_nothing_behind(browser: Browser, tmp_path: Path, artifacts: Path) -> None:
    server = start_call_server(tmp_path)
    try:
        _, sid, therapist, client, contexts = two_party_call(browser, server, "Leaving", came_from="/")
        client_ctx = contexts[1]
        cookie = guest_cookie(client_ctx)
        assert cookie is not None and status_with(server, sid, cookie) == 200
        assert sorted(client.evaluate(LIVE_TRACKS)) == ["audio", "video"]

        with client.expect_response(f"**/api/join/{sid}/leave") as left:
            client.click("#leave")
        assert left.value.status == 200
        expect(client.locator("#join")).to_have_attribute("data-state", "left")
        expect(client.locator("[data-panel=left] .kept-nothing")).to_have_text(KEPT_NOTHING)
        client.wait_for_function(ALL_STOPPED)
        assert guest_cookie(client_ctx) is None, "the browser no longer holds the guest cookie"
        assert status_with(server, sid, cookie) == 401, "and the old cookie is refused"
        expect(therapist.locator(".tile[data-peer='s1']")).to_have_count(0)
        assert_accessible(client, "the page after leaving")
        client.screenshot(path=str(artifacts / "session-left-desktop.png"), full_page=True)
        client.set_viewport_size(PHONE["viewport"])
        client.screenshot(path=str(artifacts / "session-left-phone.png"), full_page=True)

        nothing_comes_back(client, server, sid, "left")
        for context in contexts:
            context.close()
    finally:
        server.stop()


def test_the_session_ending_ends_the_page_on_a_phone(
    browser: Browser, tmp_path: Path, artifacts: Path
) -> None:
    server = start_call_server(tmp_path)
    try:
        account = enrol_therapist(server.url, server.setup_link())
        sid, links = schedule(account, 1, title="Ending")
        context, page = page_for(browser, "client", **PHONE)
        page.goto(server.url + "/")
        page.goto(links[0])
        client_through_prejoin(page)
        page.fill("#name", "Sam")
        page.click("#name-form button[type=submit]")
        expect(page.locator("#join")).to_have_attribute("data-state", "waiting")
        admit(account, sid, 1)
        expect(page.locator("#join")).to_have_attribute("data-state", "admitted")
        expect(page.locator("#call-state")).to_have_attribute("data-state", "connected", timeout=20000)
        cookie = guest_cookie(context)
        assert cookie is not None

        with page.expect_response(f"**/api/join/{sid}/leave"):
            account.agent.post(f"/api/sessions/{sid}/end", {})
        expect(page.locator("#join")).to_have_attribute("data-state", "ended")
        expect(page.locator("[data-panel=ended] .kept-nothing")).to_have_text(KEPT_NOTHING)
        page.wait_for_function(ALL_STOPPED)
        assert guest_cookie(context) is None
        assert status_with(server, sid, cookie) == 401
        assert_accessible(page, "the ended page (phone)")
        page.screenshot(path=str(artifacts / "session-ended-phone.png"), full_page=True)
        page.set_viewport_size({"width": 1280, "height": 800})
        page.screenshot(path=str(artifacts / "session-ended-desktop.png"), full_page=True)

        nothing_comes_back(page, server, sid, "ended")
        context.close()
    finally:
        server.stop()


def test_leaving_the_waiting_room(browser: Browser, tmp_path: Path) -> None:
    server = start_call_server(tmp_path)
    try:
        account = enrol_therapist(server.url, server.setup_link())
        sid, links = schedule(account, 1)
        context, page = page_for(browser, "client")
        page.goto(links[0])
        client_through_prejoin(page, audio_only=True)
        page.fill("#name", "Sam")
        page.click("#name-form button[type=submit]")
        expect(page.locator("#join")).to_have_attribute("data-state", "waiting")
        cookie = guest_cookie(context)
        assert cookie is not None and status_with(server, sid, cookie) == 200
        with page.expect_response(f"**/api/join/{sid}/leave"):
            page.click("#waiting-leave")
        expect(page.locator("#join")).to_have_attribute("data-state", "left")
        page.wait_for_function(ALL_STOPPED)
        assert guest_cookie(context) is None
        assert status_with(server, sid, cookie) == 401
        context.close()
    finally:
        server.stop()
