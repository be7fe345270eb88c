"""Real headless Chromium from Debian's packages, driven by Playwright (see shared/BROWSER.md)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, sync_playwright

from tests.support.browser_calls import BASE_ARGS, CHROMIUM

# The session's browser grants camera and microphone without asking, from fake devices.
ARGS = [*BASE_ARGS, "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"]


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
