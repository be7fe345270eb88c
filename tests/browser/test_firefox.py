"""Issue 12: a client in Debian's firefox-esr (WebDriver BiDi through puppeteer-core) in a call with a
therapist in Chromium. Video is decoded both ways, each side sees the other's coloured band, the
client answers the consent dialog in Firefox, and the recording, decrypted with stock `age`, holds
Firefox's camera (its band in the frames) and microphone."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

from playwright.sync_api import Browser, expect

from tests.support.actors import admit, enrol_therapist, schedule
from tests.support.axe import violations
from tests.support.browser_calls import (
    BAND,
    BAND_SCRIPT,
    FRAMES_DECODED,
    SAMPLE,
    band_seen,
    frames_rise,
    page_for,
    sign_in,
)
from tests.support.call_server import start_call_server
from tests.support.firefox import FirefoxPage, client_waits, firefox_page
from tests.support.practice_key import stock_age_decrypt
from vsession.recording import age

CLIENT_NAME = "Alice"


def firefox_band_seen(page: FirefoxPage, peer: str, colour: tuple[int, int, int]) -> None:
    selector = f".tile[data-peer='{peer}'][data-source='camera'] video"
    page.wait_for(
        f"""() => {{
          const sample = ({SAMPLE})("{selector}");
          return sample && sample.every((v, i) => Math.abs(v - {list(colour)}[i]) < 60);
        }}"""
    )


def firefox_frames_rise(page: FirefoxPage) -> None:
    before = page.evaluate(FRAMES_DECODED)
    time.sleep(2)
    after = page.evaluate(FRAMES_DECODED)
    assert after > before + 20, (before, after)


def streams(path: Path) -> list[dict]:
    done = subprocess.run(
        ["ffprobe", "-v", "error", "-count_packets", "-show_entries",
         "stream=index,codec_type,width,height,nb_read_packets:stream_tags=title", "-of", "json", str(path)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return json.loads(done.stdout)["streams"]


def pixel(path: Path, stream: dict) -> tuple[int, ...]:
    """The band's pixel (where SAMPLE reads it) in a frame a second into the stream."""
    width, height = stream["width"], stream["height"]
    done = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-map", f"0:{stream['index']}", "-ss", "1",
         "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
        capture_output=True, check=True,
    )  # fmt: skip
    assert len(done.stdout) == width * height * 3, (len(done.stdout), width, height)
    at = ((height // 12) * width + width // 2) * 3
    return tuple(done.stdout[at : at + 3])


def track(streams: list[dict], kind: str, peer: str, name: str) -> dict:
    """A person's camera or microphone, by the stream's title: their id (as in "s1 camera") or name."""
    titled = [(s, s.get("tags", {}).get("title", "")) for s in streams if s["codec_type"] == kind]
    (stream,) = [s for s, title in titled if peer in title.split() or name in title]
    return stream


def near(colour: tuple[int, ...], expected: tuple[int, int, int]) -> bool:
    return all(abs(a - b) < 60 for a, b in zip(colour, expected, strict=True))


def test_firefox_client_with_a_chromium_therapist(browser: Browser, tmp_path: Path, artifacts: Path) -> None:
    identity, recipient = age.generate_identity()
    identity_file = tmp_path / "practice-identity.txt"
    age.write_identity_file(identity_file, identity, recipient)
    server = start_call_server(tmp_path, f'recording_recipient = "{recipient}"')
    try:
        account = enrol_therapist(server.url, server.setup_link())
        session_id, links = schedule(account, 1, title="Firefox test")
        with firefox_page(preload=BAND_SCRIPT % list(BAND["client"])) as client:
            assert "firefox" in client.version.lower(), client.version
            client_waits(client, links[0], CLIENT_NAME)

            therapist_ctx, therapist = page_for(browser, "therapist")
            sign_in(therapist, server, account)
            therapist.goto(f"{server.url}/call/{session_id}")
            expect(therapist.locator(".camera-select option")).not_to_have_count(0)
            therapist.click("#join-call")
            admit(account, session_id, 1)
            client.wait_for("() => document.querySelector('#join').dataset.state === 'admitted'")

            # Each side decodes the other's video, and it is the other's: the band drawn before sending.
            band_seen(therapist, "s1", BAND["client"])
            firefox_band_seen(client, "t", BAND["therapist"])
            frames_rise(therapist)
            firefox_frames_rise(client)
            expect(therapist.locator(".tile[data-peer='s1'] .name")).to_have_text(CLIENT_NAME)

            therapist.click("#record-toggle")
            client.wait_for("() => document.querySelector('#consent-dialog').open")
            client.screenshot(artifacts / "firefox-consent-dialog.png")
            assert violations(client) == []  # axe, in Firefox too
            client.click("#consent-accept")
            client.wait_for("() => !document.querySelector('#consent-dialog').open")
            expect(therapist.locator("#recording-indicator")).to_have_attribute("data-state", "recording")
            client.wait_for(
                "() => document.querySelector('#recording-indicator').dataset.state === 'recording'"
            )
            expect(therapist.locator("#consent-answers li[data-peer='s1']")).to_have_attribute(
                "data-answer", "accept"
            )
            therapist.wait_for_timeout(3000)  # let a few seconds be recorded
            client.screenshot(artifacts / "firefox-call-client.png")
            therapist.screenshot(path=str(artifacts / "firefox-call-therapist.png"))

            therapist.click("#record-toggle")  # stop
            client.wait_for(
                "() => document.querySelector('#recording-indicator').dataset.state !== 'recording'"
            )
            expect(therapist.locator("#recording-indicator")).not_to_have_attribute("data-state", "recording")
            assert client.errors == []
        therapist_ctx.close()
    finally:
        server.stop()

    files = list((server.data_dir / "recordings").glob("*.age"))
    assert len(files) == 1
    plain = tmp_path / "recording.webm"
    stock_age_decrypt(identity_file, files[0], plain)
    found = streams(plain)
    assert sorted(s["codec_type"] for s in found) == ["audio", "audio", "video", "video"], found

    firefox_audio = track(found, "audio", "s1", CLIENT_NAME)
    assert int(firefox_audio["nb_read_packets"]) > 50  # Opus packets are 20 ms: over a second of it
    # The frames are Firefox's: its blue band, not the therapist's red one.
    assert near(pixel(plain, track(found, "video", "s1", CLIENT_NAME)), BAND["client"])
    assert near(pixel(plain, track(found, "video", "t", account.name)), BAND["therapist"])
