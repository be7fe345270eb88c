"""A call in real Chromium with vsession behind real Caddy (deploy/Caddyfile, `tls internal`): the
pages, the API and the signalling WebSocket all go through Caddy at its https origin, while the
media goes straight to vsession's own ICE candidates, as it does on a real host."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from tests.support.browser_calls import BASE_ARGS, CHROMIUM, frames_rise, two_party_call
from tests.support.caddy import behind_caddy


@pytest.fixture
def trusting_browser(browser: Browser) -> Iterator[Browser]:
    """Chromium that accepts Caddy's local CA, as a browser would a public one."""
    args = [
        *BASE_ARGS,
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        "--ignore-certificate-errors",
    ]
    other = browser.browser_type.launch(executable_path=CHROMIUM, headless=True, args=args)
    yield other
    other.close()


def test_a_call_through_caddy(
    trusting_browser: Browser, tmp_path: Path, artifacts: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with behind_caddy(tmp_path, 'trusted_proxies = ["127.0.0.1"]') as proxied:
        # The test's own HTTP calls (enrol, schedule, admit) trust Caddy's local CA.
        monkeypatch.setenv("SSL_CERT_FILE", str(proxied.caddy.root_cert))
        server = proxied.server
        assert server.url == proxied.caddy.origin
        _, session_id, therapist, client, contexts = two_party_call(trusting_browser, server, "Through Caddy")
        assert therapist.url == f"{proxied.caddy.origin}/call/{session_id}"
        assert client.url.startswith(f"{proxied.caddy.origin}/j/{session_id}")
        frames_rise(client)
        frames_rise(therapist)
        expect(client.locator("#call-state")).to_have_text("Connected")
        therapist.screenshot(path=str(artifacts / "proxy-call-therapist.png"))
        client.screenshot(path=str(artifacts / "proxy-call-client.png"))
        for context in contexts:
            context.close()
