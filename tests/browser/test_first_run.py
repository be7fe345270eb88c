"""The whole first run in real Chromium: setup link, password, TOTP enrolment, recovery codes,
sign out, sign in with password and a new code, dashboard."""

import re
import time
from pathlib import Path

import pyotp
from playwright.sync_api import Browser, expect

PASSWORD = "violet kettle harbour quietly 42"


def test_first_run_setup_enrol_logout_login(browser: Browser, live_server, artifacts: Path) -> None:
    link = live_server.setup_link()
    context = browser.new_context()
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)

    page.goto(link)
    # The token leaves the address bar as soon as the page has read it.
    assert "#t=" not in page.url
    page.fill("#name", "Dr. Ada Example")
    page.fill("#username", "ada")
    page.fill("#password", PASSWORD)
    page.fill("#confirm", PASSWORD)
    page.click("#setup-form button[type=submit]")

    page.wait_for_url("**/enrol")
    expect(page.locator("#secret")).not_to_be_empty()
    expect(page.locator("#qr")).to_have_attribute("src", re.compile(r"^data:image/svg\+xml"))
    assert page.eval_on_selector("#qr", "img => img.naturalWidth") > 0
    page.screenshot(path=str(artifacts / "first-run-enrolment.png"), full_page=True)
    secret = page.inner_text("#secret").replace(" ", "")
    totp = pyotp.TOTP(secret)
    # Enrol with the previous step's code (accepted), so the current step is still unused for sign-in.
    page.fill("#code", totp.at(time.time() - 30))
    page.click("#enrol-form button[type=submit]")
    expect(page.locator("#recovery-codes li")).to_have_count(10)
    page.click("#continue")

    page.wait_for_url("**/dashboard")
    expect(page.locator("#who")).to_have_text("Dr. Ada Example")
    cookies = {c["name"]: c for c in context.cookies()}
    assert cookies["__Host-vsession"]["httpOnly"] and cookies["__Host-vsession"]["secure"]
    assert cookies["__Host-vsession"]["sameSite"] == "Strict"

    page.click("#logout")
    page.wait_for_url("**/login")
    page.goto(live_server.url + "/dashboard")
    page.wait_for_url("**/login")

    page.fill("#username", "ada")
    page.fill("#password", PASSWORD)
    page.click("#password-form button[type=submit]")
    expect(page.locator("#code-form")).to_be_visible()
    page.fill("#code", totp.now())
    page.click("#code-form button[type=submit]")
    page.wait_for_url("**/dashboard")
    expect(page.locator("#who")).to_have_text("Dr. Ada Example")
    page.screenshot(path=str(artifacts / "first-run-dashboard.png"))
    assert errors == []
    context.close()
