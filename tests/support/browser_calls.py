"""Helpers for tests in real Chromium: signing a therapist in, and calls where each page's camera
gets a coloured band drawn on it before sending, so a receiver can tell whose video it got."""

from __future__ import annotations

from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.support.actors import Therapist, admit, enrol_therapist, schedule
from tests.support.live_server import LiveServer

BAND = {"therapist": (230, 30, 30), "client": (30, 60, 230)}

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
    setInterval(() => {
      ctx.drawImage(video, 0, 0, 640, 480);
      ctx.fillStyle = `rgb(${band.join(",")})`;
      ctx.fillRect(0, 0, 640, 160);
    }, 33);
    return canvas.captureStream(30);
  };
})();
"""

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


def page_for(browser: Browser, role: str) -> tuple[BrowserContext, Page]:
    context = browser.new_context()
    context.add_init_script(BAND_SCRIPT % list(BAND[role]))
    page = context.new_page()
    return context, page


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
    browser: Browser, server: LiveServer, title: str
) -> tuple[Therapist, str, Page, Page, list[BrowserContext]]:
    """A therapist and an admitted client, both in the call and each seeing the other's band."""
    account = enrol_therapist(server.url, server.setup_link())
    session_id, links = schedule(account, 1, title=title)
    therapist_ctx, therapist = page_for(browser, "therapist")
    client_ctx, client = page_for(browser, "client")
    client.goto(links[0])
    expect(client.locator("#join")).to_have_attribute("data-state", "joined")
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
