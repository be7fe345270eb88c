"""Real headless Chromium from Debian's packages, driven by Playwright (see shared/BROWSER.md)."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass

import pyotp
import pytest
from playwright.sync_api import Browser, Page, sync_playwright

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
    "--allow-loopback-in-peer-connection",
]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/browser/" in str(item.fspath):
            item.add_marker(pytest.mark.browser)
    # Playwright's sync API keeps an event loop running while the session-wide browser is open,
    # so async tests collected after tests/browser/ could not start theirs: run the browser last.
    items.sort(key=lambda item: "tests/browser/" in str(item.fspath))


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield browser
        browser.close()


@dataclass
class TherapistAccount:
    username: str
    password: str
    name: str
    totp: pyotp.TOTP


def _post(url: str, origin: str, body: dict, cookie: str = "", csrf: str = "") -> tuple[dict, str]:
    headers = {"Content-Type": "application/json", "Origin": origin}
    if cookie:
        headers["Cookie"] = f"__Host-vsession={cookie}"
    if csrf:
        headers["X-CSRF-Token"] = csrf
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers, method="POST")
    with urllib.request.urlopen(request) as response:
        set_cookie = response.headers.get("Set-Cookie", "")
        token = set_cookie.split(";")[0].split("=", 1)[1] if set_cookie else cookie
        return json.loads(response.read()), token


def make_therapist(server, username: str = "ada", name: str = "Dr. Ada Example") -> TherapistAccount:
    """Create and enrol a therapist through the real API, enrolling with the previous step's code so
    the current step is still free for the browser's sign-in (a code is accepted once)."""
    link = server.setup_link()
    token = link.split("#t=", 1)[1]
    password = "violet kettle harbour quietly 42"
    _, cookie = _post(
        f"{server.url}/api/setup",
        server.url,
        {"token": token, "name": name, "username": username, "password": password},
    )
    request = urllib.request.Request(
        f"{server.url}/api/enrol", headers={"Cookie": f"__Host-vsession={cookie}"}
    )
    with urllib.request.urlopen(request) as response:
        details = json.loads(response.read())
    totp = pyotp.TOTP(details["secret"])
    _post(f"{server.url}/api/enrol", server.url, {"code": totp.at(time.time() - 30)}, cookie, details["csrf"])
    return TherapistAccount(username, password, name, totp)


def sign_in(page: Page, server, account: TherapistAccount) -> None:
    page.goto(server.url + "/login")
    page.fill("#username", account.username)
    page.fill("#password", account.password)
    page.click("#password-form button[type=submit]")
    page.wait_for_selector("#code-form:not(.hidden)")
    page.fill("#code", account.totp.now())
    page.click("#code-form button[type=submit]")
    page.wait_for_url("**/dashboard")
