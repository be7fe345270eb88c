import { api, setCsrf } from "./api.js";
import { mountCall } from "./call.js";
import { LocalMedia } from "./devices.js";
import { mountWaiting, unlockSound } from "./waiting-notice.js";

const sessionId = decodeURIComponent(location.pathname.split("/")[2] || "");
const page = document.getElementById("call-page");
const media = new LocalMedia();
let title = "";

// The tab's title counts who waits, so a therapist on another tab sees it too.
function showTitle(text, waiting = 0) {
  title = text || "Session";
  document.getElementById("session-title").textContent = title;
  document.title = `${waiting ? `(${waiting} waiting) ` : ""}${title} · Call · vsession`;
}

function showEnded() {
  document.getElementById("call-root").replaceChildren();
  const ended = document.getElementById("call-ended");
  ended.classList.remove("hidden");
  ended.querySelector("h1").focus();
}

async function start() {
  const me = await api("/api/me");
  setCsrf(me.csrf); // admitting from this page is a change: it carries the CSRF token
  const { sessions } = await api("/api/sessions");
  showTitle(sessions.find((s) => s.id === sessionId)?.title);
  await media.open();
  document.getElementById("lobby-media").append(media.controls());
  document.getElementById("join-call").addEventListener("click", () => {
    unlockSound();
    document.getElementById("lobby").remove();
    page.dataset.state = "call";
    const root = document.getElementById("call-root");
    const call = mountCall(root, {
      query: `role=therapist&session=${encodeURIComponent(sessionId)}`,
      media,
      selfName: me.name,
      therapist: true,
      title,
      onclosed: (reason) => {
        // The call's own line says why (signed out, opened elsewhere, ended).
        page.dataset.state = reason === "signed-out" ? "signed-out" : "ended";
        media.stream.getTracks().forEach((track) => track.stop()); // the camera light goes off
        if (reason === "ended") showEnded();
      },
    });
    const error = root.querySelector("#call-error");
    const waiting = mountWaiting(root.querySelector(".call-notices"), sessionId, {
      onError: (problem) => {
        error.textContent = problem.message;
      },
      onChange: (now) => {
        showTitle(now.title ?? title, now.waiting);
        // The server ends the call with the session; its news to this page is that the session is
        // no longer among the open ones.
        if (now.ended && page.dataset.state !== "ended") {
          call.stop();
          call.onclosed("ended");
        }
      },
    });
    const refresh = () => waiting.refresh().catch(() => {});
    const joined = call.onjoined;
    call.onjoined = (message) => {
      joined(message);
      refresh(); // after a reconnect: whoever arrived meanwhile
    };
    call.onsessionschanged = refresh;
  });
}

start().catch((error) => {
  if (error.status === 401) location.assign("/login");
});
