import { api } from "./api.js";
import { mountCall } from "./call.js";
import { LocalMedia } from "./devices.js";

const sessionId = decodeURIComponent(location.pathname.split("/")[2] || "");
const page = document.getElementById("call-page");
const media = new LocalMedia();

async function start() {
  const me = await api("/api/me");
  await media.open();
  document.getElementById("lobby-media").append(media.controls());
  document.getElementById("join-call").addEventListener("click", () => {
    document.getElementById("lobby").remove();
    page.dataset.state = "call";
    mountCall(document.getElementById("call-root"), {
      query: `role=therapist&session=${encodeURIComponent(sessionId)}`,
      media,
      selfName: me.name,
      therapist: true,
      onclosed: (reason) => {
        // The call's own line says why (signed out, opened elsewhere, ended).
        page.dataset.state = reason === "signed-out" ? "signed-out" : "ended";
      },
    });
  });
}

start().catch((error) => {
  if (error.status === 401) location.assign("/login");
});
