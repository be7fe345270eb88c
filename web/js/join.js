// The client's page: trade the link for a seat once, then wait to be admitted.
import { api, onSubmit } from "./api.js";
import { connect } from "./live.js";

const sessionId = decodeURIComponent(location.pathname.split("/")[2] || "");
// The token is in the fragment so it never reaches a server log; read it and drop it at once.
const token = new URLSearchParams(location.hash.slice(1)).get("t");
history.replaceState(null, "", location.pathname);

const root = document.getElementById("join");
const FINAL = new Set(["problem", "denied", "removed", "ended"]);
let live = null;

function showPanel(state) {
  root.dataset.state = state;
  for (const panel of root.querySelectorAll("[data-panel]")) {
    panel.classList.toggle("hidden", panel.dataset.panel !== state);
  }
  if (FINAL.has(state) && live) {
    live.stop();
    live = null;
  }
}

function showProblem(message) {
  document.getElementById("problem-text").textContent = message;
  showPanel("problem");
}

async function start() {
  if (token) {
    await api(`/api/join/${encodeURIComponent(sessionId)}/redeem`, { token });
  }
  const status = await api(`/api/join/${encodeURIComponent(sessionId)}`);
  for (const name of document.querySelectorAll(".therapist-name")) name.textContent = status.therapist;
  document.getElementById("welcome").textContent = status.title ? `Welcome to “${status.title}”` : "Welcome";
  document.getElementById("name").value = status.name;
  showPanel(status.state === "invited" ? "joined" : status.state);
  if (!FINAL.has(root.dataset.state)) {
    live = connect(
      `role=guest&session=${encodeURIComponent(sessionId)}`,
      (message) => {
        if (message.type === "state") showPanel(message.state === "invited" ? "joined" : message.state);
      },
      (status) => {
        // A dropped socket may mean the seat is gone; ask, rather than retry forever.
        if (status === "reconnecting") {
          api(`/api/join/${encodeURIComponent(sessionId)}`)
            .then((now) => showPanel(now.state === "invited" ? "joined" : now.state))
            .catch((error) => showProblem(error.message));
        }
      },
    );
  }
}

onSubmit(document.getElementById("name-form"), async (data) => {
  const result = await api(`/api/join/${encodeURIComponent(sessionId)}/wait`, { name: data.get("name") });
  showPanel(result.state);
});

start().catch((error) => showProblem(error.message));
