// The client's page: trade the link for a seat once, read the privacy notice, check camera and
// microphone (only once the person asks), give a name, wait, and join the call when the therapist
// admits them. At the end every track stops, the seat's cookie is dropped, and the page says so.
import { api, onSubmit } from "./api.js";
import { mountCall } from "./call.js";
import { DeviceCheck } from "./devicecheck.js";
import { LocalMedia } from "./devices.js";
import { connect } from "./live.js";
import { readNotice } from "./notice.js";

const [, , rawSession = "", ending = ""] = location.pathname.split("/");
const sessionId = decodeURIComponent(rawSession);
const base = `/api/join/${encodeURIComponent(sessionId)}`;
// The token is in the fragment so it never reaches a server log; read it and drop it at once.
const token = new URLSearchParams(location.hash.slice(1)).get("t");
history.replaceState(null, "", location.pathname);
// What this tab turned on, so a reload in the waiting room or the call carries on without asking
// again. Per tab, and removed when the session is over for this page.
const CHOICE = `vsession-media:${sessionId}`;
// Some private windows refuse storage: the device check is then simply shown again.
function stored(use) {
  try {
    return use(sessionStorage);
  } catch {
    return null;
  }
}

const root = document.getElementById("join");
const ENDINGS = new Set(["denied", "removed", "ended", "left"]);
const media = new LocalMedia();
let live = null;
let call = null;
let check = null;
let myName = "";
let seat = "checking"; // the seat's state as the server last said
let ready = false; // notice read and devices chosen in this page
let over = false;

function setPanel(name) {
  root.dataset.state = name;
  for (const panel of root.querySelectorAll("[data-panel]")) {
    panel.classList.toggle("hidden", panel.dataset.panel !== name);
  }
  // Move focus with the panel, so a screen reader starts reading the new one.
  root.querySelector(`[data-panel=${name}] h1`)?.focus();
}

function showState(state) {
  seat = state === "invited" ? "joined" : state;
  if (ENDINGS.has(seat)) {
    finish(seat);
    return;
  }
  if (!ready || over) return; // the notice and the device check come first
  if (root.dataset.state === seat) return; // already shown: keep what the person is doing
  setPanel(seat);
  if (seat === "joined" || seat === "waiting") {
    root.querySelector(`[data-panel=${seat}] .preview-slot`).replaceChildren(media.controls());
  }
  if (seat === "admitted" && !call) {
    // One socket per seat: the call's connection replaces the waiting room's.
    live?.stop();
    live = null;
    call = mountCall(document.getElementById("call-slot"), {
      query: `role=guest&session=${encodeURIComponent(sessionId)}`,
      media,
      selfName: myName,
      onclosed: (reason, text) => (reason === "replaced" ? showProblem(text) : showState(reason)),
    });
    // However the call screen lets the person leave, leaving ends the session for this page.
    const leave = call.leave.bind(call);
    call.leave = () => {
      leave();
      finish("left");
    };
  }
}

function showProblem(message) {
  document.getElementById("problem-text").textContent = message;
  stopMedia();
  setPanel("problem");
}

function stopMedia() {
  live?.stop();
  live = null;
  call?.local?.screen?.stop();
  call?.stop();
  check?.stop();
  media.close();
}

/** The session is over for this page: stop every track, forget this tab's choice, have the server
 * drop the seat's cookie, and leave a history entry that shows only this ending. */
async function finish(state) {
  if (over) return;
  over = true;
  stopMedia();
  stored((storage) => storage.removeItem(CHOICE));
  history.replaceState(null, "", `/j/${encodeURIComponent(sessionId)}/${state}`);
  setPanel(state);
  try {
    await api(`${base}/leave`, {});
  } catch {
    // Nothing more this page can drop; the server already refuses a seat that has ended.
  }
}

async function chooseDevices() {
  const earlier = stored((storage) => storage.getItem(CHOICE));
  if (earlier && (seat === "waiting" || seat === "admitted")) {
    // This tab was already let through the check; a reload carries on as before.
    await media.open({ camera: earlier === "camera+microphone", microphone: true });
    return;
  }
  setPanel("devices");
  check = new DeviceCheck(root.querySelector("[data-panel=devices]"), media);
  const chosen = await check.done();
  check.stop();
  stored((storage) => storage.setItem(CHOICE, chosen));
}

function listen() {
  // The waiting-room channel; once admitted, the call's own connection takes over the news.
  live = connect(
    `role=guest&session=${encodeURIComponent(sessionId)}`,
    (message) => {
      if (message.type === "state" && (!call || ENDINGS.has(message.state))) showState(message.state);
    },
    (state, text) => {
      // The link was opened in another tab: that one has the seat now.
      if (state === "replaced") showProblem(text);
      // A dropped socket may mean the seat is gone; ask, rather than retry forever.
      if (state === "reconnecting" && !call) {
        api(base)
          .then((now) => showState(now.state))
          .catch((error) => showProblem(error.message));
      }
    },
  );
}

async function start() {
  if (ENDINGS.has(ending)) {
    // A reload or the forward button after the end: show it again; ask and open nothing.
    over = true;
    setPanel(ending);
    return;
  }
  if (token) await api(`${base}/redeem`, { token });
  const status = await api(base);
  myName = status.name;
  for (const name of document.querySelectorAll(".therapist-name")) name.textContent = status.therapist || "your therapist";
  document.getElementById("welcome").textContent = status.title ? `Welcome to “${status.title}”` : "Welcome";
  document.getElementById("name").value = status.name;
  seat = status.state;
  if (ENDINGS.has(seat)) return showState(seat);
  listen();
  const notice = await api(`${base}/notice`);
  if (!notice.acknowledged) {
    setPanel("notice");
    await readNotice(root.querySelector("[data-panel=notice]"), base, notice);
  }
  if (over) return;
  await chooseDevices();
  ready = true;
  showState(seat);
}

onSubmit(document.getElementById("name-form"), async (data) => {
  const result = await api(`${base}/wait`, { name: data.get("name") });
  myName = data.get("name");
  showState(result.state);
});
document.getElementById("waiting-leave").addEventListener("click", () => finish("left"));

start().catch((error) => showProblem(error.message));
