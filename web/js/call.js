// The call screen shared by the therapist's and the client's pages: tiles with names, mute and
// camera-off, device choice, connection state and quality, screen share, chat, leave, and the
// recording indicator. It only shows what the server says; the server decides.
import { mountConsent } from "./consent.js";
import { el } from "./dom.js";
import { CallConnection } from "./protocol.js";
import { QualityMeter } from "./quality.js";

const RECORDING_TEXT = { recording: "Recording", paused: "Recording paused", stopped: "Not recording" };
const STATE_TEXT = {
  connecting: "Connecting…",
  connected: "Connected",
  reconnecting: "Reconnecting…",
  left: "You left the call",
  ended: "The call has ended",
  "signed-out": "Signed out",
  replaced: "Opened elsewhere",
};

export function mountCall(container, { query, media, selfName, therapist = false, onclosed = () => {} }) {
  const call = new CallConnection(query);
  window.vsessionCall = call; // for the browser tests' getStats checks
  const tiles = el("div", { class: "tiles" });
  const state = el("span", { class: "badge", id: "call-state" }, STATE_TEXT.connecting);
  const quality = el("span", { class: "badge", id: "call-quality", "data-level": "unknown" }, "Quality: –");
  const recording = el("span", { class: "badge recording-indicator", id: "recording-indicator", "data-state": "stopped" }, RECORDING_TEXT.stopped);
  const chatLog = el("ol", { class: "chat-log", id: "chat-log", "aria-live": "polite" });
  const chatInput = el("input", { type: "text", id: "chat-input", maxlength: "2000", placeholder: "Message everyone", "aria-label": "Chat message" });
  const chatForm = el("form", { class: "chat-form", id: "chat-form" }, chatInput, el("button", { type: "submit" }, "Send"));
  const micButton = el("button", { type: "button", id: "toggle-mic", class: "secondary" }, "Mute");
  const camButton = el("button", { type: "button", id: "toggle-camera", class: "secondary" }, "Camera off");
  const screenButton = el("button", { type: "button", id: "toggle-screen", class: "secondary" }, "Share screen");
  const leaveButton = el("button", { type: "button", id: "leave", class: "danger" }, "Leave");
  const rejoinButton = el("button", { type: "button", id: "rejoin", class: "hidden" }, "Rejoin");
  const errorLine = el("p", { class: "error", id: "call-error", role: "alert" });

  const consentSlot = el("div", { class: "consent-slot" });
  const selfTile = tile("self", `${selfName} (you)`);
  selfTile.video.muted = true;
  selfTile.video.srcObject = media.stream;
  tiles.append(selfTile.root);

  container.replaceChildren(
    el(
      "section",
      { class: "call" },
      el("div", { class: "call-status" }, state, quality, recording),
      consentSlot,
      tiles,
      el("div", { class: "controls" }, micButton, camButton, screenButton, media.controls({ preview: false }), leaveButton, rejoinButton),
      errorLine,
      el("aside", { class: "chat" }, el("h2", {}, "Chat"), chatLog, chatForm, el("p", { class: "hint" }, "Chat is not saved.")),
    ),
  );

  const peers = new Map(); // peer id -> tile with its MediaStream
  const screens = new Map(); // peer id -> tile
  const byMid = new Map(); // mid -> { peer, source, track }
  let audioOn = true;
  let videoOn = true;

  function tile(id, name, source = "camera") {
    const video = el("video", { autoplay: "", playsinline: "" });
    const label = el("span", { class: "name" }, name);
    const flags = el("span", { class: "flags" });
    const root = el("figure", { class: `tile ${source}`, "data-peer": id, "data-source": source }, video, el("figcaption", {}, label, flags));
    const stream = new MediaStream();
    if (id !== "self") video.srcObject = stream;
    return { root, video, label, flags, stream };
  }

  mountConsent(consentSlot, call, {
    therapist,
    names: (id) => (id === call.id ? "You" : peers.get(id)?.label.textContent || id),
  });

  call.local = { camera: media.camera, microphone: media.microphone };
  media.onchange = (source, track) => {
    if (source === "camera" && track) track.enabled = videoOn;
    if (source === "microphone" && track) track.enabled = audioOn;
    call.setLocalTrack(source, track);
    selfTile.video.srcObject = media.stream;
  };

  call.onstate = (s) => {
    state.textContent = STATE_TEXT[s] || s;
    state.dataset.state = s;
  };
  call.onerror = (text) => {
    errorLine.textContent = text;
  };
  call.onrecording = (s) => {
    recording.dataset.state = s;
    recording.textContent = RECORDING_TEXT[s] || s;
  };
  call.onclosed = (reason, text) => {
    state.textContent = STATE_TEXT[reason] || STATE_TEXT.ended;
    state.dataset.state = reason;
    if (text) errorLine.textContent = text;
    onclosed(reason, text);
  };
  call.onparticipants = (list) => {
    const present = new Set(list.map((p) => p.id));
    for (const person of list) {
      if (person.id === call.id) continue;
      let t = peers.get(person.id);
      if (!t) {
        t = tile(person.id, person.name);
        peers.set(person.id, t);
        tiles.append(t.root);
        // Back after a reload: its m-lines may have carried on without a new offer saying so.
        for (const info of byMid.values()) {
          if (info.peer === person.id && info.source !== "screen") t.stream.addTrack(info.track);
        }
      }
      t.label.textContent = person.name;
      t.root.dataset.audio = person.audio;
      t.root.dataset.video = person.video;
      t.flags.textContent = [person.audio ? "" : "muted", person.video ? "" : "camera off"].filter(Boolean).join(" · ");
    }
    for (const [id, t] of [...peers, ...screens]) {
      if (!present.has(id)) {
        t.root.remove();
        peers.delete(id);
        screens.delete(id);
      }
    }
  };
  call.onstream = (mid, track, info) => {
    byMid.set(mid, { ...info, track });
    if (info.source === "screen") {
      let t = screens.get(info.peer);
      if (!t) {
        const owner = peers.get(info.peer);
        t = tile(info.peer, `${owner ? owner.label.textContent : "Someone"}'s screen`, "screen");
        screens.set(info.peer, t);
        tiles.append(t.root);
      }
      t.stream.getTracks().forEach((old) => t.stream.removeTrack(old));
      t.stream.addTrack(track);
      return;
    }
    let t = peers.get(info.peer);
    if (!t) {
      t = tile(info.peer, "");
      peers.set(info.peer, t);
      tiles.append(t.root);
    }
    t.stream.getTracks().filter((old) => old.kind === track.kind).forEach((old) => t.stream.removeTrack(old));
    t.stream.addTrack(track);
  };
  call.onstreamended = (mid) => {
    const info = byMid.get(mid);
    byMid.delete(mid);
    if (!info) return;
    if (info.source === "screen") {
      screens.get(info.peer)?.root.remove();
      screens.delete(info.peer);
    } else {
      peers.get(info.peer)?.stream.removeTrack(info.track);
    }
  };
  call.onchat = (message) => {
    chatLog.append(el("li", {}, el("strong", {}, `${message.name}: `), message.text));
    chatLog.scrollTop = chatLog.scrollHeight;
  };

  micButton.addEventListener("click", () => {
    audioOn = !audioOn;
    if (media.microphone) media.microphone.enabled = audioOn;
    micButton.textContent = audioOn ? "Mute" : "Unmute";
    micButton.setAttribute("aria-pressed", String(!audioOn));
    call.setMedia(audioOn, videoOn);
  });
  camButton.addEventListener("click", () => {
    videoOn = !videoOn;
    if (media.camera) media.camera.enabled = videoOn;
    camButton.textContent = videoOn ? "Camera off" : "Camera on";
    camButton.setAttribute("aria-pressed", String(!videoOn));
    call.setMedia(audioOn, videoOn);
  });
  screenButton.addEventListener("click", async () => {
    if (call.local.screen) {
      call.local.screen.stop();
      call.stopScreen();
      screenButton.textContent = "Share screen";
      return;
    }
    try {
      const [track] = (await navigator.mediaDevices.getDisplayMedia({ video: true })).getVideoTracks();
      track.addEventListener("ended", () => {
        if (call.local.screen === track) {
          call.stopScreen();
          screenButton.textContent = "Share screen";
        }
      });
      await call.shareScreen(track);
      screenButton.textContent = "Stop sharing";
    } catch (error) {
      errorLine.textContent = `Screen sharing did not start (${error.name}).`;
    }
  });
  chatForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = chatInput.value.trim();
    if (text) call.chat(text);
    chatInput.value = "";
  });
  leaveButton.addEventListener("click", () => {
    call.leave();
    for (const t of [...peers.values(), ...screens.values()]) t.root.remove();
    peers.clear();
    screens.clear();
    leaveButton.classList.add("hidden");
    rejoinButton.classList.remove("hidden");
  });
  rejoinButton.addEventListener("click", () => {
    rejoinButton.classList.add("hidden");
    leaveButton.classList.remove("hidden");
    call.start();
  });

  const meter = new QualityMeter();
  setInterval(async () => {
    if (!call.pc) return;
    const result = meter.measure(await call.getStats());
    if (!result) return;
    quality.dataset.level = result.level;
    quality.textContent = `Quality: ${result.level}`;
    quality.title = `round trip ${Math.round(result.rtt * 1000)} ms, loss ${(result.loss * 100).toFixed(1)}%, ${Math.round(result.kbps)} kbit/s`;
  }, 2000);

  call.start();
  return call;
}
