"""Issue 10 in real Chromium: the server reuses inactive m-lines, so a mid that carried one client
can carry another in a later offer. The therapist's page must drop the first client's tile and
show the second client's media on the same mid, and keep showing a client who reloads.

The hard case is a mid whose peer changes between two offers the page sees, with no offer in
between that made it inactive (and so no "track" event): the server holds back offers while one is
unanswered and sends only the latest layout. The test makes that happen by holding the therapist
page's answer while the first client leaves and the second arrives."""

import json
from pathlib import Path

from playwright.sync_api import Browser, BrowserContext, Page, WebSocketRoute, expect

from tests.support.actors import admit, enrol_therapist, schedule
from tests.support.browser_calls import (
    BAND,
    BAND_SCRIPT,
    band_seen,
    client_through_prejoin,
    frames_rise,
    sign_in,
)
from tests.support.call_server import start_call_server

ALICE, BOB = (40, 200, 40), (30, 60, 230)

STREAMS = "() => window.vsessionCall.streams"


def client_page(
    browser: Browser, link: str, name: str, band: tuple[int, int, int]
) -> tuple[BrowserContext, Page]:
    context = browser.new_context()
    context.add_init_script(BAND_SCRIPT % list(band))
    page = context.new_page()
    page.goto(link)
    client_through_prejoin(page)
    page.fill("#name", name)
    page.click("#name-form button[type=submit]")
    expect(page.locator("#join")).to_have_attribute("data-state", "waiting")
    return context, page


class AnswerGate:
    """Stands between the therapist's page and the server; while closed, holds the page's answers."""

    def __init__(self, page: Page) -> None:
        self.closed = False
        self.held: list[str | bytes] = []
        self._server: WebSocketRoute | None = None
        page.route_web_socket("**/ws?*", self._route)

    def _route(self, page_side: WebSocketRoute) -> None:
        self._server = page_side.connect_to_server()
        page_side.on_message(self._from_page)

    def _from_page(self, message: str | bytes) -> None:
        assert self._server is not None
        if self.closed and json.loads(message).get("type") == "answer":
            self.held.append(message)
        else:
            self._server.send(message)

    def hold_next_answer(self, sharer: Page) -> None:
        """Close the gate and make the server offer again (`sharer` shares a screen); returns once
        the page's answer is held."""
        self.closed = True
        sharer.click("#toggle-screen")
        for _ in range(400):  # a bound, not a timing claim: the answer comes within moments
            if self.held:
                return
            sharer.wait_for_timeout(50)
        raise AssertionError("the therapist's page answered no offer")

    def open(self) -> None:
        assert self._server is not None
        self.closed = False
        for message in self.held:
            self._server.send(message)
        self.held.clear()


def mids_of(therapist: Page, peer: str) -> set[str]:
    streams = therapist.evaluate(STREAMS)
    return {mid for mid, info in streams.items() if info["peer"] == peer}


def test_a_reused_mid_shows_the_next_client(browser: Browser, tmp_path: Path, artifacts: Path) -> None:
    server = start_call_server(tmp_path)
    contexts: list[BrowserContext] = []
    try:
        account = enrol_therapist(server.url, server.setup_link())
        session_id, links = schedule(account, 2, title="Reused m-lines")
        therapist_ctx = browser.new_context()
        therapist_ctx.add_init_script(BAND_SCRIPT % list(BAND["therapist"]))
        contexts.append(therapist_ctx)
        therapist = therapist_ctx.new_page()
        gate = AnswerGate(therapist)
        sign_in(therapist, server, account)
        therapist.goto(f"{server.url}/call/{session_id}")
        expect(therapist.locator(".camera-select option")).not_to_have_count(0)
        therapist.click("#join-call")

        alice_ctx, alice = client_page(browser, links[0], "Alice", ALICE)
        contexts.append(alice_ctx)
        admit(account, session_id, 1)
        expect(alice.locator("#join")).to_have_attribute("data-state", "admitted")
        band_seen(therapist, "s1", ALICE)
        alices_mids = mids_of(therapist, "s1")
        assert len(alices_mids) == 2

        # Alice's screen share makes the server offer the therapist's page again; its answer waits.
        gate.hold_next_answer(alice)
        alice.click("#leave")
        alice_ctx.close()
        expect(therapist.locator(".tile[data-peer='s1']")).to_have_count(0)
        bob_ctx, bob = client_page(browser, links[1], "Bob", BOB)
        contexts.append(bob_ctx)
        admit(account, session_id, 2)
        expect(bob.locator("#join")).to_have_attribute("data-state", "admitted")
        band_seen(bob, "t", BAND["therapist"])  # Bob is in: his media has taken Alice's m-lines
        assert mids_of(therapist, "s1") == alices_mids  # and the page has not been told otherwise
        gate.open()
        band_seen(therapist, "s2", BOB)
        assert mids_of(therapist, "s2") == alices_mids  # Bob's media came on Alice's m-lines
        expect(therapist.locator(".tile[data-peer='s2'] .name")).to_have_text("Bob")
        expect(therapist.locator(".tile[data-peer='s1']")).to_have_count(0)
        frames_rise(therapist)

        # Bob reloads while an offer is unanswered: his tile goes and comes back (he left, then
        # joined), and his new media arrives on the same mids with no offer that changed them.
        gate.hold_next_answer(bob)
        bob.reload()
        expect(bob.locator("#join")).to_have_attribute("data-state", "admitted")
        band_seen(bob, "t", BAND["therapist"])
        gate.open()
        band_seen(therapist, "s2", BOB)
        assert mids_of(therapist, "s2") == alices_mids
        frames_rise(therapist)
        therapist.screenshot(path=str(artifacts / "reused-mids-therapist.png"))
    finally:
        for context in contexts:
            context.close()
        server.stop()
