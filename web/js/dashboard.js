import { api, onSubmit, setCsrf, show } from "./api.js";
import { el } from "./dom.js";
import { connect } from "./live.js";
import { renderSessions } from "./sessions.js";

const errorBox = document.getElementById("dashboard-error");
const showError = (error) => {
  errorBox.textContent = error.message;
};

// The server ended this sign-in (signed out, disabled, expired...): say why, and nothing here works now.
function showSignedOut(text) {
  errorBox.replaceChildren(`${text || "You were signed out."} `, el("a", { href: "/login" }, "Sign in again"));
  for (const part of document.querySelectorAll("main > :not(#dashboard-error)")) show(part, false);
}

async function refresh() {
  const { sessions } = await api("/api/sessions");
  renderSessions(document.getElementById("sessions"), sessions, { onError: showError, onChange: refresh });
  show(document.getElementById("sessions-empty"), sessions.length === 0);
}

async function load() {
  const me = await api("/api/me");
  setCsrf(me.csrf);
  document.getElementById("who").textContent = me.name;
  show(document.getElementById("admin"), me.is_admin);
  if (me.recovery_codes_left < 3) {
    const warning = document.getElementById("codes-warning");
    warning.textContent = `Only ${me.recovery_codes_left} recovery codes left. Ask your admin to reset your two-step sign-in.`;
    show(warning);
  }
  await refresh();
  connect(
    "role=therapist",
    (message) => {
      if (message.type === "sessions_changed") refresh().catch(showError);
    },
    (state, text) => {
      if (state === "signed-out") showSignedOut(text);
      else if (state === "replaced") showError(new Error(text));
    },
  );
}

const startInput = document.getElementById("starts");
const soon = new Date(Date.now() + 5 * 60000 - new Date().getTimezoneOffset() * 60000);
startInput.value = soon.toISOString().slice(0, 16);

onSubmit(document.getElementById("new-session"), async (data) => {
  await api("/api/sessions", {
    title: data.get("title"),
    starts_at: Math.floor(new Date(data.get("starts")).getTime() / 1000),
    duration_minutes: Number(data.get("duration")),
    seats: Number(data.get("seats")),
  });
  document.getElementById("new-session-box").open = false;
  await refresh();
});

document.getElementById("logout").addEventListener("click", async () => {
  try {
    const result = await api("/api/logout", {});
    location.assign(result.next);
  } catch (error) {
    showError(error);
  }
});

document.getElementById("invite").addEventListener("click", async () => {
  try {
    const result = await api("/api/setup-links", { admin: false });
    const box = document.getElementById("invite-link");
    box.textContent = result.url;
    show(box);
  } catch (error) {
    showError(error);
  }
});

load().catch((error) => {
  if (error.status === 401) location.assign("/login");
  else showError(error);
});
