"""Helpers for tests in real Chromium: signing a therapist in, walking a client through the join
page (privacy notice, device check), and calls where each page's camera gets a coloured band drawn
on it before sending, so a receiver can tell whose video it got."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.support.actors import Therapist, admit, enrol_therapist, schedule
from tests.support.live_server import LiveServer

BAND = {"therapist": (230, 30, 30), "client": (30, 60, 230)}
# A phone, for page_for(..., **PHONE): the viewport issue 12 names, touch, and the mobile meta viewport.
PHONE: dict[str, Any] = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}
ANDROID_CHROME = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Mobile Safari/537.36"
)

# Stands between the fake camera and the page: the page receives a canvas track with a band on top.
BAND_SCRIPT = """
(() => {
  const band = %s;
  const original = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
  navigator.mediaDevices.getUserMedia = async (constraints) => {
    const stream = await original(constraints);
    if (!constraints || !constraints.video) return stream;
    const video = document.createElement("video");
    video.muted = true;
    video.srcObject = new MediaStream(stream.getVideoTracks());
    await video.play();
    const canvas = document.createElement("canvas");
    canvas.width = 640;
    canvas.height = 480;
    const ctx = canvas.getContext("2d");
    const timer = setInterval(() => {
      ctx.drawImage(video, 0, 0, 640, 480);
      ctx.fillStyle = `rgb(${band.join(",")})`;
      ctx.fillRect(0, 0, 640, 160);
    }, 33);
    const banded = canvas.captureStream(30);
    // The page stopping the banded track stops the camera behind it too, as it would without us.
    const [out] = banded.getVideoTracks();
    const stop = out.stop.bind(out);
    out.stop = () => {
      stop();
      clearInterval(timer);
      stream.getVideoTracks().forEach((track) => track.stop());
    };
    stream.getAudioTracks().forEach((track) => banded.addTrack(track));
    return banded;
  };
})();
"""

# Keeps every track getUserMedia gives the page (after the band), so a test can see each one stopped,
# and counts the calls, so a test can see none was made.
TRACKS_SCRIPT = """
(() => {
  window.__vsessionTracks = [];
  window.__vsessionMediaRequests = [];
  const original = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
  navigator.mediaDevices.getUserMedia = async (constraints) => {
    window.__vsessionMediaRequests.push(JSON.parse(JSON.stringify(constraints || {})));
    const stream = await original(constraints);
    window.__vsessionTracks.push(...stream.getTracks());
    return stream;
  };
})();
"""
LIVE_TRACKS = "() => window.__vsessionTracks.filter((t) => t.readyState === 'live').map((t) => t.kind)"
MEDIA_REQUESTS = "() => window.__vsessionMediaRequests.length"

SAMPLE = """(selector) => {
  const video = document.querySelector(selector);
  if (!video || !video.videoWidth) return null;
  const canvas = document.createElement("canvas");
  canvas.width = video.videoWidth;
  canvas.height = video.videoHeight;
  const ctx = canvas.getContext("2d");
  ctx.drawImage(video, 0, 0);
  const x = Math.floor(canvas.width / 2);
  const y = Math.floor(canvas.height / 12);
  return Array.from(ctx.getImageData(x, y, 1, 1).data.slice(0, 3));
}"""

FRAMES_DECODED = """async () => {
  const report = await window.vsessionCall.getStats();
  let frames = 0;
  report.forEach((s) => {
    if (s.type === "inbound-rtp" && s.kind === "video") frames += s.framesDecoded || 0;
  });
  return frames;
}"""


def sign_in(page: Page, server: LiveServer, account: Therapist) -> None:
    page.goto(server.url + "/login")
    page.fill("#username", account.username)
    page.fill("#password", account.password)
    page.click("#password-form button[type=submit]")
    page.wait_for_selector("#code-form:not(.hidden)")
    page.fill("#code", account.totp.now())
    page.click("#code-form button[type=submit]")
    page.wait_for_url("**/dashboard")


CHROMIUM = "/usr/bin/chromium"  # Debian's, never Playwright's own download (see shared/BROWSER.md)
# Launch arguments without the two fake-media ones, which each launch adds as it needs them.
BASE_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
    "--allow-loopback-in-peer-connection",
]


def launch_chromium(browser: Browser, *, asks: bool, fake_devices: str = "") -> Browser:
    """Another Chromium beside the session's. `asks`: without --use-fake-ui-for-media-stream, so a
    page gets a camera or microphone only where the context granted it, and a real NotAllowedError
    otherwise. `fake_devices`: options for Chromium's fake capture devices ("device-count=0")."""
    args = [*BASE_ARGS, "--use-fake-device-for-media-stream" + (f"={fake_devices}" if fake_devices else "")]
    if not asks:
        args.append("--use-fake-ui-for-media-stream")
    return browser.browser_type.launch(executable_path=CHROMIUM, headless=True, args=args)


def page_for(browser: Browser, role: str, **context_options: Any) -> tuple[BrowserContext, Page]:
    context = browser.new_context(**context_options)
    context.add_init_script(BAND_SCRIPT % list(BAND[role]))
    context.add_init_script(TRACKS_SCRIPT)
    page = context.new_page()
    return context, page


def client_through_prejoin(page: Page, audio_only: bool = False) -> None:
    """From the opened link to the name form, as a client takes it: read the privacy notice, then
    turn on camera and microphone (or the microphone only) and continue."""
    expect(page.locator("#join")).to_have_attribute("data-state", "notice")
    page.click("#notice-accept")
    expect(page.locator("#join")).to_have_attribute("data-state", "devices")
    page.click("#join-audio-only" if audio_only else "#devices-allow")
    expect(page.locator("#devices-continue")).to_have_text("Continue")
    page.click("#devices-continue")
    expect(page.locator("#join")).to_have_attribute("data-state", "joined")


def band_seen(page: Page, peer: str, colour: tuple[int, int, int], source: str = "camera") -> None:
    selector = f".tile[data-peer='{peer}'][data-source='{source}'] video"
    page.wait_for_function(
        f"""() => {{
          const sample = ({SAMPLE})("{selector}");
          return sample && sample.every((v, i) => Math.abs(v - {list(colour)}[i]) < 60);
        }}""",
        timeout=20000,
    )


def frames_rise(page: Page) -> None:
    before = page.evaluate(FRAMES_DECODED)
    page.wait_for_timeout(2000)
    after = page.evaluate(FRAMES_DECODED)
    assert after > before + 20, (before, after)


def two_party_call(
    browser: Browser, server: LiveServer, title: str, came_from: str = "", init_script: str = ""
) -> tuple[Therapist, str, Page, Page, list[BrowserContext]]:
    """A therapist and an admitted client, both in the call and each seeing the other's band.
    With `came_from`, the client's tab shows that page of the server before the link; an
    `init_script` runs in both pages before theirs (e.g. to shape RTCPeerConnection)."""
    account = enrol_therapist(server.url, server.setup_link())
    session_id, links = schedule(account, 1, title=title)
    therapist_ctx, therapist = page_for(browser, "therapist")
    client_ctx, client = page_for(browser, "client")
    for context in (therapist_ctx, client_ctx) if init_script else ():
        context.add_init_script(init_script)
    if came_from:
        client.goto(server.url + came_from)
    client.goto(links[0])
    client_through_prejoin(client)
    expect(client.locator("[data-panel=joined] video.preview")).to_be_visible()
    client.fill("#name", "Alice")
    client.click("#name-form button[type=submit]")
    expect(client.locator("#join")).to_have_attribute("data-state", "waiting")
    sign_in(therapist, server, account)
    therapist.goto(f"{server.url}/call/{session_id}")
    expect(therapist.locator(".camera-select option")).not_to_have_count(0)
    therapist.click("#join-call")
    admit(account, session_id, 1)
    expect(client.locator("#join")).to_have_attribute("data-state", "admitted")
    band_seen(client, "t", BAND["therapist"])
    band_seen(therapist, "s1", BAND["client"])
    return account, session_id, therapist, client, [therapist_ctx, client_ctx]
