"""The harness itself: Chromium loads a page from a live `vsession serve` under our CSP."""

from pathlib import Path

from playwright.sync_api import Browser


def test_start_page_renders_without_csp_violations(browser: Browser, live_server, artifacts: Path) -> None:
    page = browser.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    response = page.goto(live_server.url + "/")
    assert response is not None and response.status == 200
    assert page.title() == "vsession"
    assert page.get_by_role("link", name="Therapist sign-in").is_visible()
    assert page.evaluate("window.isSecureContext") is True
    page.screenshot(path=str(artifacts / "smoke-start-page.png"))
    assert problems == []
    page.close()
