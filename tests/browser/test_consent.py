"""Issue 7 in real Chromium: the therapist asks to record, the client accepts in the consent dialog
(which only an explicit answer closes), both pages show the recorder's real state; the client
withdraws with one click and recording stops on both pages; the file decrypts with stock `age`."""

import subprocess
from pathlib import Path

from playwright.sync_api import Browser, expect

from tests.support.browser_calls import two_party_call
from tests.support.call_server import start_call_server
from tests.support.practice_key import stock_age_decrypt
from vsession.recording import age


def test_consent_dialog_recording_and_withdrawal(browser: Browser, tmp_path: Path, artifacts: Path) -> None:
    identity, recipient = age.generate_identity()
    identity_file = tmp_path / "practice-identity.txt"
    age.write_identity_file(identity_file, identity, recipient)
    server = start_call_server(tmp_path, f'recording_recipient = "{recipient}"')
    try:
        _, _, therapist, client, contexts = two_party_call(browser, server, "Consent test")
        for page in (therapist, client):
            expect(page.locator("#recording-indicator")).to_have_attribute("data-state", "stopped")

        therapist.click("#record-toggle")
        dialog = client.locator("#consent-dialog")
        expect(dialog).to_be_visible()
        expect(client.locator("#consent-text")).to_contain_text("Who can access it")
        # Neither Escape nor a click outside the dialog dismisses it.
        client.keyboard.press("Escape")
        client.mouse.click(5, 5)
        expect(dialog).to_be_visible()
        expect(therapist.locator("#recording-indicator")).not_to_have_attribute("data-state", "recording")
        client.screenshot(path=str(artifacts / "consent-dialog-client.png"))

        client.click("#consent-accept")
        expect(dialog).to_be_hidden()
        for page in (therapist, client):
            expect(page.locator("#recording-indicator")).to_have_attribute("data-state", "recording")
            expect(page.locator("#recording-indicator")).to_have_text("Recording")
        expect(therapist.locator("#consent-answers li[data-peer='s1']")).to_have_attribute(
            "data-answer", "accept"
        )
        expect(client.locator("#withdraw-consent")).to_be_visible()
        therapist.wait_for_timeout(2000)  # let a couple of seconds be recorded
        therapist.screenshot(path=str(artifacts / "consent-recording-therapist.png"))
        client.screenshot(path=str(artifacts / "consent-recording-client.png"))

        client.click("#withdraw-consent")
        for page in (therapist, client):
            expect(page.locator("#recording-indicator")).not_to_have_attribute("data-state", "recording")
            expect(page.locator("#recording-indicator")).not_to_have_text("Recording")
        expect(therapist.locator("#consent-answers li[data-peer='s1']")).to_have_attribute(
            "data-answer", "withdraw"
        )
        therapist.click("#record-toggle")  # the therapist ends the request too
        for page in (therapist, client):
            expect(page.locator("#recording-indicator")).to_have_attribute("data-state", "stopped")
        client.screenshot(path=str(artifacts / "consent-withdrawn-client.png"))
        therapist.screenshot(path=str(artifacts / "consent-withdrawn-therapist.png"))
        for context in contexts:
            context.close()
    finally:
        server.stop()

    files = list((server.data_dir / "recordings").glob("*.age"))
    assert len(files) == 1
    plain = tmp_path / "recording.webm"
    stock_age_decrypt(identity_file, files[0], plain)
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "stream=codec_type", "-of", "csv=p=0", str(plain)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert sorted(probe.stdout.split()) == ["audio", "audio", "video", "video"]
