// The client's page: trade the link for a seat once, check camera and microphone while waiting,
// then join the call when the therapist admits you.
import { api, onSubmit } from "./api.js";
import { mountCall } from "./call.js";
import { LocalMedia } from "./devices.js";
import { connect } from "./live.js";

const sessionId = decodeURIComponent(location.pathname.split("/")[2] || "");
const base = `/api/join/${encodeURIComponent(sessionId)}`;
// The token is in the fragment so it never reaches a server log; read it and drop it at once.
const token = new URLSearchParams(location.hash.slice(1)).get("t");
history.replaceState(null, "", location.pathname);

const root = document.getElementById("join");
const FINAL = new Set(["problem", "denied", "removed", "ended"]);
const media = new LocalMedia();
let live = null;
let call = null;
let myName = "";

function showPanel(state) {
  const shown = state === "invited" ? "joined" : state;
  root.dataset.state = shown;
  for (const panel of root.querySelectorAll("[data-panel]")) {
    panel.classList.toggle("hidden", panel.dataset.panel !== shown);
  }
  if (shown === "joined" || shown === "waiting") {
    root.querySelector(`[data-panel=${shown}] .preview-slot`).replaceChildren(media.controls());
  }
  if (shown === "admitted" && !call) {
    // One socket per seat: the call's connection replaces the waiting room's.
    live?.stop();
    live = null;
    call = mountCall(document.getElementById("call-slot"), {
      query: `role=guest&session=${encodeURIComponent(sessionId)}`,
      media,
      selfName: myName,
      onclosed: (reason, text) => (reason === "replaced" ? showProblem(text) : showPanel(reason)),
    });
  }
  if (FINAL.has(shown)) {
    live?.stop();
    live = null;
    call?.stop();
    media.stream.getTracks().forEach((track) => track.stop());
  }
}

function showProblem(message) {
  document.getElementById("problem-text").textContent = message;
  showPanel("problem");
}

async function start() {
  if (token) await api(`${base}/redeem`, { token });
  const status = await api(base);
  myName = status.name;
  for (const name of document.querySelectorAll(".therapist-name")) name.textContent = status.therapist;
  document.getElementById("welcome").textContent = status.title ? `Welcome to “${status.title}”` : "Welcome";
  document.getElementById("name").value = status.name;
  if (!FINAL.has(status.state)) await media.open();
  showPanel(status.state);
  if (FINAL.has(root.dataset.state) || call) return;
  // The waiting-room channel; once admitted, the call's own connection takes over the news.
  live = connect(
    `role=guest&session=${encodeURIComponent(sessionId)}`,
    (message) => {
      if (message.type === "state" && !call) showPanel(message.state);
      else if (message.type === "state" && FINAL.has(message.state)) showPanel(message.state);
    },
    (state, text) => {
      // The link was opened in another tab: that one has the seat now.
      if (state === "replaced") showProblem(text);
      // A dropped socket may mean the seat is gone; ask, rather than retry forever.
      if (state === "reconnecting" && !call) {
        api(base)
          .then((now) => showPanel(now.state))
          .catch((error) => showProblem(error.message));
      }
    },
  );
}

onSubmit(document.getElementById("name-form"), async (data) => {
  const result = await api(`${base}/wait`, { name: data.get("name") });
  myName = data.get("name");
  showPanel(result.state);
});

start().catch((error) => showProblem(error.message));
