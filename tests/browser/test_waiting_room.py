"""Issue 4 end to end in real Chromium: a therapist schedules a session, a client redeems the link,
waits and is admitted; a second device reusing the link is refused; ending the session ends the page.
Also: the link token never reaches the server's log or any Referer header."""

from pathlib import Path

from playwright.sync_api import Browser, expect

from tests.support.actors import enrol_therapist
from tests.support.browser_calls import client_through_prejoin, sign_in
from tests.support.live_server import start_server


def test_link_waiting_room_admit_reuse_end(browser: Browser, tmp_path: Path, artifacts: Path) -> None:
    log = tmp_path / "server.log"
    server = start_server(tmp_path / "data", log=log)
    seen: list[tuple[str, dict[str, str]]] = []
    try:
        account = enrol_therapist(server.url, server.setup_link())
        therapist_ctx = browser.new_context()
        therapist = therapist_ctx.new_page()
        sign_in(therapist, server, account)

        therapist.click("#new-session-box summary")
        therapist.fill("#title", "Weekly session")
        therapist.select_option("#seats", "1")
        therapist.click("#new-session button[type=submit]")
        seat = therapist.locator(".session .seat[data-seat='1']")
        link = seat.locator(".link-text").inner_text()
        token = link.split("#t=", 1)[1]
        assert len(token) == 43

        client_ctx = browser.new_context()
        client = client_ctx.new_page()
        client.on("request", lambda r: seen.append((r.url, r.headers)))
        client.goto(link)
        client_through_prejoin(client)
        assert "#t=" not in client.url
        client.fill("#name", "Alice")
        client.click("#name-form button[type=submit]")
        expect(client.locator("#join")).to_have_attribute("data-state", "waiting")

        expect(seat).to_have_attribute("data-state", "waiting")
        expect(seat.locator(".who strong")).to_have_text("Alice")
        therapist.screenshot(path=str(artifacts / "waiting-room-therapist.png"), full_page=True)
        client.screenshot(path=str(artifacts / "waiting-room-client-waiting.png"))
        seat.locator("button.admit").click()
        expect(client.locator("#join")).to_have_attribute("data-state", "admitted")
        expect(seat).to_have_attribute("data-state", "admitted")
        client.screenshot(path=str(artifacts / "waiting-room-client-admitted.png"))

        other_ctx = browser.new_context()
        other = other_ctx.new_page()
        other.on("request", lambda r: seen.append((r.url, r.headers)))
        other.goto(link)
        expect(other.locator("#join")).to_have_attribute("data-state", "problem")
        expect(other.locator("#problem-text")).to_contain_text("already used")
        other.screenshot(path=str(artifacts / "waiting-room-link-reused.png"))
        expect(seat.locator(".reuse")).to_be_visible()

        therapist.locator(".session button.end-session").click()
        expect(client.locator("#join")).to_have_attribute("data-state", "ended")
        client.screenshot(path=str(artifacts / "waiting-room-client-ended.png"))
        expect(therapist.locator(".session")).to_have_count(0)
        for ctx in (therapist_ctx, client_ctx, other_ctx):
            ctx.close()
    finally:
        server.stop()

    # The fragment never leaves the browser: not in any URL sent, not in any Referer, not in the log.
    assert seen, "the client pages made requests"
    for url, headers in seen:
        assert token not in url
        assert all(token not in value for value in headers.values())
    text = log.read_text()
    assert '"path": "/j/' in text and "/api/join/" in text, "the access log records the join requests"
    assert token not in text
