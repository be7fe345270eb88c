// One page in Debian's firefox-esr, driven over WebDriver BiDi by puppeteer-core (no geckodriver),
// for tests/support/firefox.py: one JSON command a line on stdin, one JSON line on stdout for each
// answer ({id, ok, value} or {id, ok: false, error}) and for each console error or uncaught
// exception of the page ({event, text}). Closes the browser when stdin ends.
//   node firefox_client.mjs '{"executablePath": "/usr/bin/firefox-esr", "prefs": {...}, "preload": "..."}'
import readline from "node:readline";
import puppeteer from "puppeteer-core";

const options = JSON.parse(process.argv[2] || "{}");
const emit = (message) => process.stdout.write(`${JSON.stringify(message)}\n`);

const browser = await puppeteer.launch({
  browser: "firefox",
  executablePath: options.executablePath,
  headless: true,
  extraPrefsFirefox: options.prefs || {},
  defaultViewport: { width: 1280, height: 720 },
});
const [page] = await browser.pages();
page.setDefaultTimeout(options.timeout || 20000);
page.on("console", (message) => {
  if (message.type() === "error") emit({ event: "console", text: message.text() });
});
page.on("pageerror", (error) => emit({ event: "pageerror", text: String(error) }));
// Runs before the page's own scripts on every document (a BiDi preload script: the page's CSP
// does not apply to it).
if (options.preload) await page.evaluateOnNewDocument(options.preload);

const ops = {
  goto: ({ url }) => page.goto(url).then(() => null),
  // A locator waits until the element is visible, enabled and still, as a person would.
  click: ({ selector }) => page.locator(selector).click(),
  fill: ({ selector, text }) => page.locator(selector).fill(text),
  // A string, evaluated by the browser (not eval in the page, which the CSP forbids); a promise
  // is awaited.
  evaluate: ({ expression }) => page.evaluate(expression),
  screenshot: ({ path }) => page.screenshot({ path }).then(() => null),
};

emit({ event: "ready", version: await browser.version() });
const lines = readline.createInterface({ input: process.stdin });
for await (const line of lines) {
  const { id, op, ...args } = JSON.parse(line);
  try {
    const value = await ops[op](args);
    emit({ id, ok: true, value: value === undefined ? null : value });
  } catch (error) {
    emit({ id, ok: false, error: String(error && error.stack ? error.stack : error) });
  }
}
await browser.close();
