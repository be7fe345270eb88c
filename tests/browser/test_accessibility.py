"""Issue 12: axe-core finds nothing, of any impact, on any page in any state a person meets.

One walk in real Chromium goes through them all as people would (first run, sign-in, the dashboard,
a client's join page from the link to the waiting room, both call pages with and without the
consent dialog, recordings, and the ends of a client's visit: denied, removed, ended), running axe
at each state and keeping a screenshot of it (test-artifacts/a11y-<state>.png). Each state is then
its own test case, so one page's problems do not hide another's."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pyotp
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.support.axe import violations
from tests.support.call_server import start_call_server
from tests.support.live_server import LiveServer
from vsession.recording import age

PASSWORD = "violet kettle harbour quietly 42"
Check = Callable[[Page, str], None]

# Every state the walk reaches, in order, with whose page it is (for handing a failure over).
STATES: dict[str, str] = {
    "index": "firefox",
    "setup-without-link": "firefox",
    "setup": "firefox",
    "enrol": "firefox",
    "enrol-recovery-codes": "firefox",
    "dashboard-empty": "firefox",
    "dashboard-invite-link": "firefox",
    "dashboard-new-session-form": "firefox",
    "dashboard-with-session": "firefox",
    "login": "firefox",
    "login-error": "firefox",
    "login-code": "firefox",
    "login-recovery-code": "firefox",
    "recordings-empty": "recordings",
    "join-problem": "prejoin",
    "join-notice": "prejoin",
    "join-devices": "prejoin",
    "join-devices-on": "prejoin",
    "join-devices-audio-only": "prejoin",
    "join-name": "prejoin",
    "join-waiting": "prejoin",
    "dashboard-client-waiting": "firefox",
    "call-therapist-lobby": "callpage",
    "call-therapist-alone": "callpage",
    "call-therapist": "callpage",
    "call-client": "callpage",
    "call-therapist-asking": "callpage",
    "call-client-consent-dialog": "callpage",
    "call-therapist-recording": "callpage",
    "call-client-recording": "callpage",
    "recordings-one": "recordings",
    "join-denied": "prejoin",
    "join-removed": "prejoin",
    "join-left": "prejoin",
    "join-ended": "prejoin",
    "call-therapist-ended": "callpage",
}
# Only while the join page has no privacy notice and device check yet (the prejoin work of issue 12).
OPTIONAL = {"join-notice", "join-devices", "join-devices-on", "join-devices-audio-only", "join-left"}
# States whose problems belong to pages another part of issue 12 is changing: state -> exact findings.
KNOWN: dict[str, str] = {}


class Walk:
    def __init__(self, artifacts: Path) -> None:
        self.artifacts = artifacts
        self.found: dict[str, list[str]] = {}
        self.error = ""

    def check(self, page: Page, state: str) -> None:
        assert state in STATES and state not in self.found, state
        self.found[state] = violations(page)
        page.screenshot(path=str(self.artifacts / f"a11y-{state}.png"), full_page=True)


def shown(page: Page, selector: str) -> bool:
    return page.locator(selector).first.is_visible()


def join_state(page: Page, state: str) -> None:
    expect(page.locator("#join")).to_have_attribute("data-state", state)


def client_through_join(
    page: Page, link: str, name: str, check: Check | None = None, audio_only: bool = False
) -> None:
    """A client from the link to the waiting room, through the privacy notice and the device check
    where the join page has them, running `check` at each step."""
    page.goto(link)
    page.locator("#notice-accept:visible, #name-form:visible").first.wait_for()
    if shown(page, "#notice-accept"):
        if check and not audio_only:
            check(page, "join-notice")
        page.click("#notice-accept")
        page.locator("#devices-allow:visible").wait_for()
        if check and not audio_only:
            check(page, "join-devices")
        page.click("#join-audio-only" if audio_only else "#devices-allow")
        page.locator("#devices-continue:visible").wait_for()
        if check:
            check(page, "join-devices-audio-only" if audio_only else "join-devices-on")
        page.click("#devices-continue")
    page.locator("#name-form:visible").wait_for()
    if check and not audio_only:
        check(page, "join-name")
    page.fill("#name", name)
    page.click("#name-form button[type=submit]")
    join_state(page, "waiting")


def seat_button(dashboard: Page, seat: int, action: str) -> None:
    dashboard.click(f".seat[data-seat='{seat}'] button.{action}")


def first_run(page: Page, server: LiveServer, check: Check) -> tuple[pyotp.TOTP, list[str]]:
    """Setup, enrolment and the dashboard; the authenticator and the recovery codes."""
    page.goto(server.url + "/")
    check(page, "index")
    page.goto(server.url + "/setup")
    expect(page.locator("#missing-link")).to_be_visible()
    check(page, "setup-without-link")
    page.goto("about:blank")  # else only the fragment changes, and the page does not load again
    page.goto(server.setup_link())
    check(page, "setup")
    page.fill("#name", "Dr. Ada Example")
    page.fill("#username", "ada")
    page.fill("#password", PASSWORD)
    page.fill("#confirm", PASSWORD)
    page.click("#setup-form button[type=submit]")
    page.wait_for_url("**/enrol")
    expect(page.locator("#secret")).not_to_be_empty()
    page.wait_for_function("() => document.querySelector('#qr').naturalWidth > 0")
    check(page, "enrol")
    totp = pyotp.TOTP(page.inner_text("#secret").replace(" ", ""))
    page.fill("#code", totp.at(time.time() - 30))
    page.click("#enrol-form button[type=submit]")
    expect(page.locator("#recovery-codes li")).to_have_count(10)
    check(page, "enrol-recovery-codes")
    codes = page.locator("#recovery-codes li").all_inner_texts()
    page.click("#continue")
    page.wait_for_url("**/dashboard")
    expect(page.locator("#who")).to_have_text("Dr. Ada Example")
    check(page, "dashboard-empty")
    page.click("#invite")
    expect(page.locator("#invite-link")).to_be_visible()
    check(page, "dashboard-invite-link")
    page.click("#new-session-box summary")
    check(page, "dashboard-new-session-form")
    page.fill("#title", "Accessibility walk")
    page.select_option("#seats", "4")
    page.click("#new-session button[type=submit]")
    expect(page.locator(".seat .link-text")).to_have_count(4)
    check(page, "dashboard-with-session")
    return totp, codes


def sign_in_again(page: Page, server: LiveServer, recovery_code: str, check: Check) -> None:
    page.click("#logout")
    page.wait_for_url("**/login")
    check(page, "login")
    page.fill("#username", "ada")
    page.fill("#password", "not the password at all")
    page.click("#password-form button[type=submit]")
    expect(page.locator("#password-form .error")).not_to_be_empty()
    check(page, "login-error")
    page.fill("#password", PASSWORD)
    page.click("#password-form button[type=submit]")
    expect(page.locator("#code-form")).to_be_visible()
    check(page, "login-code")
    page.click("#use-recovery")
    expect(page.locator("#code-label")).to_have_text("One of your recovery codes")
    check(page, "login-recovery-code")
    page.fill("#code", recovery_code)
    page.click("#code-form button[type=submit]")
    page.wait_for_url("**/dashboard")
    page.goto(server.url + "/recordings")
    expect(page.locator("#no-recordings")).to_be_visible()
    check(page, "recordings-empty")


def remote_video(page: Page, peer: str) -> None:
    video = f".tile[data-peer='{peer}'][data-source='camera'] video"
    page.wait_for_function("(s) => document.querySelector(s)?.videoWidth > 0", arg=video, timeout=20000)


def walk(browser: Browser, server: LiveServer, check: Check) -> None:
    therapist_ctx = browser.new_context()
    dashboard = therapist_ctx.new_page()
    _, codes = first_run(dashboard, server, check)
    links = dashboard.locator(".seat .link-text").all_inner_texts()
    sign_in_again(dashboard, server, codes[0], check)
    session_id = links[0].split("/j/", 1)[1].split("#", 1)[0]

    clients = [browser.new_context() for _ in links]
    alice = clients[0].new_page()
    alice.goto(f"{server.url}/j/no-such-session#t=not-a-token")
    join_state(alice, "problem")
    check(alice, "join-problem")
    client_through_join(alice, links[0], "Alice", check)
    check(alice, "join-waiting")
    dashboard.goto(server.url + "/dashboard")
    expect(dashboard.locator(".seat[data-seat='1'] button.admit")).to_be_visible()
    check(dashboard, "dashboard-client-waiting")

    call = therapist_ctx.new_page()
    call.goto(f"{server.url}/call/{session_id}")
    expect(call.locator(".camera-select option")).not_to_have_count(0)
    check(call, "call-therapist-lobby")
    call.click("#join-call")
    expect(call.locator("#call-state")).to_have_text("Connected")
    check(call, "call-therapist-alone")
    seat_button(dashboard, 1, "admit")
    join_state(alice, "admitted")
    remote_video(alice, "t")
    remote_video(call, "s1")
    check(call, "call-therapist")
    check(alice, "call-client")

    call.click("#record-toggle")
    expect(alice.locator("#consent-dialog")).to_be_visible()
    check(call, "call-therapist-asking")
    check(alice, "call-client-consent-dialog")
    alice.click("#consent-accept")
    for page in (call, alice):
        expect(page.locator("#recording-indicator")).to_have_attribute("data-state", "recording")
    check(call, "call-therapist-recording")
    check(alice, "call-client-recording")
    call.click("#record-toggle")
    expect(call.locator("#recording-indicator")).not_to_have_attribute("data-state", "recording")
    dashboard.goto(server.url + "/recordings")
    expect(dashboard.locator("[data-recording]")).to_have_count(1)
    check(dashboard, "recordings-one")

    bob, carol, dave = (context.new_page() for context in clients[1:])
    client_through_join(bob, links[1], "Bob")
    client_through_join(carol, links[2], "Carol")
    client_through_join(dave, links[3], "Dave", check, audio_only=True)
    if shown(dave, "#waiting-leave"):
        dave.click("#waiting-leave")
        join_state(dave, "left")
        check(dave, "join-left")
    dashboard.goto(server.url + "/dashboard")
    seat_button(dashboard, 2, "deny")
    join_state(bob, "denied")
    check(bob, "join-denied")
    seat_button(dashboard, 3, "admit")
    join_state(carol, "admitted")
    expect(carol.locator("#call-state")).to_have_text("Connected")
    seat_button(dashboard, 3, "remove")
    join_state(carol, "removed")
    check(carol, "join-removed")
    dashboard.click(".session button.end-session")
    join_state(alice, "ended")
    check(alice, "join-ended")
    # Seen to take longer than Playwright's default 5 s on a busy machine.
    expect(call.locator("#call-page")).to_have_attribute("data-state", "ended", timeout=20000)
    check(call, "call-therapist-ended")
    for context in [therapist_ctx, *clients]:
        context.close()


@pytest.fixture(scope="module")
def audit(browser: Browser, tmp_path_factory: pytest.TempPathFactory, artifacts: Path) -> Iterator[Walk]:
    tmp = tmp_path_factory.mktemp("a11y")
    _, recipient = age.generate_identity()
    server = start_call_server(tmp, f'recording_recipient = "{recipient}"')
    result = Walk(artifacts)
    try:
        walk(browser, server, result.check)
    except Exception as error:  # the states before it still count; the rest say where it stopped
        result.error = f"{type(error).__name__}: " + " ".join(str(error).splitlines()[:4])
    finally:
        server.stop()
    yield result


def case(state: str) -> object:
    if state in KNOWN:
        reason = f"{STATES[state]}'s page: {KNOWN[state]}"
        return pytest.param(state, marks=pytest.mark.xfail(strict=True, reason=reason))
    return state


def test_the_walk_went_to_its_end(audit: Walk) -> None:
    assert audit.error == ""


@pytest.mark.parametrize("state", [case(state) for state in STATES])
def test_axe_finds_nothing(audit: Walk, state: str) -> None:
    if state not in audit.found:
        if state in OPTIONAL and not audit.error:
            pytest.skip("this join page has no privacy notice or device check yet")
        pytest.fail(f"the walk did not reach {state}: {audit.error or 'skipped'}")
    assert audit.found[state] == [], "\n".join(audit.found[state])


def test_the_runner_reports_what_axe_finds(browser: Browser, live_server: LiveServer) -> None:
    page = browser.new_page()
    page.goto(live_server.url + "/")
    assert violations(page) == []
    page.evaluate("() => document.querySelector('main').append(document.createElement('img'))")
    assert violations(page) == ["image-alt (critical): Images must have alternative text: img"]
    page.close()
