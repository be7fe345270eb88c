"""The pages say why their sign-in ended, in plain words, and stop: the dashboard after a sign-out
in another tab, and the dashboard and the call page after `vsession user disable` run by the admin
in another process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from playwright.sync_api import Browser, Page, expect

from tests.support.actors import enrol_therapist, schedule
from tests.support.browser_calls import page_for, sign_in
from tests.support.live_server import LiveServer
from vsession.auth import signins

PATIENCE = 15_000  # ms; only so a missing message fails instead of hanging


def dashboard_says(page: Page, text: str) -> None:
    expect(page.locator("#dashboard-error")).to_contain_text(text, timeout=PATIENCE)
    expect(page.get_by_role("link", name="Sign in again")).to_be_visible()
    expect(page.locator("#sessions")).to_be_hidden()


def test_the_pages_show_why_the_sign_in_ended(
    browser: Browser, live_server: LiveServer, artifacts: Path
) -> None:
    therapist = enrol_therapist(live_server.url, live_server.setup_link())
    errors: list[str] = []

    # Two tabs of one sign-in: signing out in one says so in the other.
    context, first = page_for(browser, "therapist")
    first.on("pageerror", lambda e: errors.append(str(e)))
    sign_in(first, live_server, therapist)
    second = context.new_page()
    second.goto(live_server.url + "/dashboard")
    expect(second.locator("#who")).to_have_text(therapist.name)
    first.click("#logout")
    first.wait_for_url("**/login")
    dashboard_says(second, signins.LOGGED_OUT)
    context.close()

    # Another therapist, on the dashboard and in a call; the admin disables the account.
    invite = therapist.agent.post("/api/setup-links", {"admin": False})["url"]
    bob = enrol_therapist(live_server.url, invite, username="bob", name="Dr. Bob Example")
    sid, _ = schedule(bob, seats=1)
    context, dashboard = page_for(browser, "therapist")
    dashboard.on("pageerror", lambda e: errors.append(str(e)))
    sign_in(dashboard, live_server, bob)
    call = context.new_page()
    call.goto(f"{live_server.url}/call/{sid}")
    expect(call.locator(".camera-select option")).not_to_have_count(0)  # the button works from here
    call.click("#join-call")
    expect(call.locator("#call-state")).to_have_text("Connected", timeout=PATIENCE)

    env = {k: v for k, v in os.environ.items() if not k.startswith("VSESSION_")}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "vsession",
            "user",
            "disable",
            bob.username,
            "--data-dir",
            str(live_server.data_dir),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    dashboard_says(dashboard, signins.DISABLED)
    expect(call.locator("#call-error")).to_have_text(signins.DISABLED, timeout=PATIENCE)
    expect(call.locator("#call-state")).to_have_text("Signed out")
    call.screenshot(path=str(artifacts / "signed-out-call.png"))
    dashboard.screenshot(path=str(artifacts / "signed-out-dashboard.png"))
    assert errors == []
    context.close()
