// What went wrong with a camera or microphone, in words for the person, and how to fix it in the
// browser they are using. getUserMedia's error names are the standard's (W3C Media Capture).

/** "denied" | "missing" | "busy" | "unsupported" | "other" */
export function problemKind(error) {
  switch (error?.name) {
    case "NotAllowedError":
    case "SecurityError":
      return "denied";
    case "NotFoundError":
    case "OverconstrainedError":
      return "missing";
    case "NotReadableError":
    case "AbortError":
      return "busy";
    case "TypeError":
      return "unsupported";
    default:
      return "other";
  }
}

/** "chrome" | "firefox" | "safari" | "other", and whether it is a phone or tablet. */
export function browserOf(ua = navigator.userAgent) {
  const mobile = /Android|iPhone|iPad|iPod|Mobile/.test(ua);
  if (/Firefox\/|FxiOS\//.test(ua)) return { name: "firefox", mobile };
  if (/Edg\/|Chrome\/|Chromium\/|CriOS\//.test(ua)) return { name: "chrome", mobile };
  if (/Safari\//.test(ua)) return { name: "safari", mobile };
  return { name: "other", mobile };
}

const NOUN = { camera: "camera", microphone: "microphone" };
const cap = (word) => word[0].toUpperCase() + word.slice(1);

/** One short line: what happened. */
export function whatHappened(source, kind) {
  const noun = NOUN[source];
  return {
    denied: `Your ${noun} is blocked for this page.`,
    missing: `No ${noun} was found.`,
    busy: `Your ${noun} could not start.`,
    unsupported: `This browser cannot use a ${noun} on this page.`,
    other: `Your ${noun} could not start.`,
  }[kind];
}

function allowSteps(noun, { name, mobile }) {
  if (name === "chrome" && mobile) {
    return `Tap the icon at the left of the address bar, then Permissions, and allow the ${noun}. Then press Try again.`;
  }
  if (name === "chrome") {
    return `Click the icon at the left of the address bar (a lock or two sliders), set ${cap(noun)} to Allow, then press Try again.`;
  }
  if (name === "firefox") {
    return `Click the crossed-out ${noun} icon in the address bar, remove the block, then press Try again.`;
  }
  if (name === "safari" && mobile) {
    return `Tap “aA” in the address bar, then Website Settings, set ${cap(noun)} to Allow, then press Try again.`;
  }
  if (name === "safari") {
    return `In the Safari menu choose Settings for This Website, set ${cap(noun)} to Allow, then press Try again.`;
  }
  return `Allow the ${noun} in your browser's settings for this site, then press Try again.`;
}

/** What the person can do about it, in this browser. */
export function howToFix(source, kind, browser = browserOf()) {
  const noun = NOUN[source];
  const without =
    source === "camera"
      ? "You can also join with audio only."
      : "Without a microphone the others cannot hear you, but you can still see and hear them.";
  switch (kind) {
    case "denied":
      return (
        `${allowSteps(noun, browser)} If it stays blocked, your ${browser.mobile ? "phone's Settings app" : "computer's privacy settings"} ` +
        `may not let this browser use the ${noun}. ${without}`
      );
    case "missing":
      return `If your device has a ${noun}, check that it is connected and switched on, then press Try again. ${without}`;
    case "busy":
      return `Another app or browser tab may be using it. Close other apps that use the ${noun} (another video call, the camera app), then press Try again. ${without}`;
    case "unsupported":
      return `Please open your link in an up-to-date Chrome, Firefox or Safari. ${without}`;
    default:
      return `Press Try again. ${without}`;
  }
}
