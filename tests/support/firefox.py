"""Debian's firefox-esr in a test, driven over WebDriver BiDi by puppeteer-core (see shared/BROWSER.md):
tests/support/firefox_client.mjs runs under node and holds one page; this side sends it commands as
JSON lines and reads the answers, and the page's console errors, on a thread."""

from __future__ import annotations

import itertools
import json
import queue
import re
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.support.paths import REPO

FIREFOX = "/usr/bin/firefox-esr"
CLIENT = Path(__file__).with_name("firefox_client.mjs")
PREFS: dict[str, Any] = {
    # A fake camera and microphone, granted without a prompt (no one is there to answer it).
    "media.navigator.streams.fake": True,
    "media.navigator.permission.disabled": True,
}
# Like Playwright's page.evaluate: a string that is a function's source is called (with `arg`).
FUNCTION = re.compile(r"^\s*(async\s+)?(function\b|\([^)]*\)\s*=>|[A-Za-z_$][\w$]*\s*=>)")
VISIBLE = "(s) => { const e = document.querySelector(s); return !!e && e.getClientRects().length > 0; }"
ANY_VISIBLE = f"(list) => list.some({VISIBLE})"


class FirefoxError(RuntimeError):
    pass


class FirefoxPage:
    """One Firefox page. Its methods wait for the browser's answer and raise FirefoxError on failure."""

    def __init__(self, process: subprocess.Popen[str], timeout: float) -> None:
        self._process = process
        self._timeout = timeout
        self._answers: queue.Queue[dict[str, Any]] = queue.Queue()
        self._ids = itertools.count(1)
        self.errors: list[str] = []  # the page's console errors and uncaught exceptions
        self.version = ""
        self._stderr: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._read_stderr, daemon=True).start()
        ready = self._next(timeout=60)
        self.version = ready.get("version", "")

    def _read(self) -> None:
        assert self._process.stdout is not None
        for line in self._process.stdout:
            message = json.loads(line)
            if message.get("event") in ("console", "pageerror"):
                self.errors.append(message["text"])
            else:
                self._answers.put(message)
        self._answers.put({"event": "exit"})

    def _read_stderr(self) -> None:
        assert self._process.stderr is not None
        for line in self._process.stderr:
            self._stderr.append(line)

    def _next(self, timeout: float) -> dict[str, Any]:
        try:
            message = self._answers.get(timeout=timeout)
        except queue.Empty:
            raise FirefoxError(f"no answer from Firefox within {timeout} s") from None
        if message.get("event") == "exit":
            self._process.wait(timeout=10)
            raise FirefoxError(f"the Firefox driver exited: {''.join(self._stderr)[-2000:]}")
        return message

    def _send(self, op: str, **args: Any) -> Any:
        assert self._process.stdin is not None
        command_id = next(self._ids)
        self._process.stdin.write(json.dumps({"id": command_id, "op": op, **args}) + "\n")
        self._process.stdin.flush()
        answer = self._next(timeout=self._timeout + 10)
        if answer.get("id") != command_id:
            raise FirefoxError(f"answer out of order: {answer}")
        if not answer["ok"]:
            raise FirefoxError(f"{op} {args}: {answer['error']}")
        return answer["value"]

    def goto(self, url: str) -> None:
        self._send("goto", url=url)

    def click(self, selector: str) -> None:
        self._send("click", selector=selector)

    def fill(self, selector: str, text: str) -> None:
        self._send("fill", selector=selector, text=text)

    def evaluate(self, expression: str, arg: Any = None) -> Any:
        """The value of a script, or of calling a function's source with `arg` (a promise is awaited)."""
        if FUNCTION.match(expression):
            expression = f"({expression})({json.dumps(arg)})"
        return self._send("evaluate", expression=expression)

    def wait_for(self, expression: str, arg: Any = None, timeout: float = 20) -> Any:
        """Evaluate until the value is truthy, and return it."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(expression, arg)
            if value:
                return value
            if time.monotonic() > deadline:
                raise FirefoxError(f"still false after {timeout} s: {expression}")
            time.sleep(0.2)

    def visible(self, selector: str) -> bool:
        return bool(self.evaluate(VISIBLE, selector))

    def wait_visible(self, selector: str, timeout: float = 20) -> None:
        self.wait_for(VISIBLE, selector, timeout)

    def screenshot(self, path: Path) -> None:
        self._send("screenshot", path=str(path))


@contextmanager
def firefox_page(preload: str = "", timeout: float = 20) -> Iterator[FirefoxPage]:
    """A fresh profile's page in headless firefox-esr with a fake camera and microphone.
    `preload` runs before each document's own scripts (as Playwright's add_init_script)."""
    if preload:  # not on about:blank, which has no navigator.mediaDevices
        preload = f"if (navigator.mediaDevices) {{\n{preload}\n}}"
    options = {"executablePath": FIREFOX, "prefs": PREFS, "preload": preload, "timeout": int(timeout * 1000)}
    process = subprocess.Popen(
        ["node", str(CLIENT), json.dumps(options)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,  # node finds puppeteer-core in node_modules/ from the script's folder up
    )
    try:
        yield FirefoxPage(process, timeout)
    finally:
        assert process.stdin is not None
        process.stdin.close()  # the script closes the browser when its input ends
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def client_waits(page: FirefoxPage, link: str, name: str) -> None:
    """A client's steps on the join page, from the link to the waiting room, as a person takes them:
    the privacy notice and the device check where the page has them, then the name form."""
    page.goto(link)
    page.wait_for(ANY_VISIBLE, ["#notice-accept", "#name-form"])
    if page.visible("#notice-accept"):
        page.click("#notice-accept")
        page.click("#devices-allow")
        page.click("#devices-continue")
        page.wait_visible("#name-form")
    page.fill("#name", name)
    page.click("#name-form button[type=submit]")
    page.wait_for("() => document.querySelector('#join').dataset.state === 'waiting'")
