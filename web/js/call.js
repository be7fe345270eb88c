// The call screen shared by the therapist's and the client's pages: tiles with names, mute and
// camera-off, device choice, connection state and quality, screen share, chat, leave, and the
// recording indicator. It only shows what the server says; the server decides.
import { mountConsent } from "./consent.js";
import { el } from "./dom.js";
import { CallConnection } from "./protocol.js";
import { QualityMeter } from "./quality.js";
import { recordingWords } from "./recording-words.js";

const STATE_TEXT = {
  connecting: "Connecting…",
  connected: "Connected",
  reconnecting: "Reconnecting…",
  left: "You left the call",
  ended: "The call has ended",
  "signed-out": "Signed out",
  replaced: "Opened elsewhere",
};

// Where a browser has no screen capture (phones), there is no button that cannot work.
const CAN_SHARE_SCREEN = typeof navigator.mediaDevices?.getDisplayMedia === "function";

/**
 * options.title: the session's title, shown as the call's heading (the client's page has none).
 */
export function mountCall(container, { query, media, selfName, therapist = false, title = "", onclosed = () => {} }) {
  const call = new CallConnection(query);
  window.vsessionCall = call; // for the browser tests' getStats checks
  const heading = el(
    "h1",
    { id: "call-heading", class: title ? "call-title" : "visually-hidden", tabindex: "-1" },
    title || "Your session",
  );
  const state = el("span", { class: "badge", id: "call-state", tabindex: "-1" }, STATE_TEXT.connecting);
  const quality = el("span", { class: "badge", id: "call-quality", "data-level": "unknown" }, "Quality: –");
  const recording = el("span", {
    class: "badge recording-indicator",
    id: "recording-indicator",
    role: "status",
    "aria-live": "polite",
    "aria-atomic": "true",
    "data-state": "unknown",
    "data-status": "unknown",
  });
  const chatLog = el("ol", { class: "chat-log", id: "chat-log", "aria-live": "polite" });
  const chatInput = el("input", { type: "text", id: "chat-input", maxlength: "2000", placeholder: "Message everyone", "aria-label": "Chat message" });
  const chatForm = el("form", { class: "chat-form", id: "chat-form" }, chatInput, el("button", { type: "submit" }, "Send"));
  const micButton = el("button", { type: "button", id: "toggle-mic", class: "secondary" });
  const camButton = el("button", { type: "button", id: "toggle-camera", class: "secondary" });
  const screenButton = CAN_SHARE_SCREEN
    ? el("button", { type: "button", id: "toggle-screen", class: "secondary" }, "Share screen")
    : null;
  const sideButton = el(
    "button",
    { type: "button", id: "toggle-side", class: "secondary side-toggle", "aria-controls": "call-side", "aria-expanded": "false" },
    "Chat",
  );
  const leaveButton = el("button", { type: "button", id: "leave", class: "danger" }, "Leave");
  const rejoinButton = el("button", { type: "button", id: "rejoin", class: "hidden" }, "Rejoin");
  const errorLine = el("p", { class: "error", id: "call-error", role: "alert" });
  // What happened to a camera or microphone the device check could not open, in its words.
  const mediaNote = el("p", { class: "hint media-note", id: "media-note" }, media.error || "");
  const sideHeading = el("h2", { id: "chat-heading", tabindex: "-1" }, "Chat");
  const sideClose = el("button", { type: "button", id: "close-side", class: "secondary side-toggle" }, "Back to the call");

  const consentSlot = el("div", { class: "consent-slot" });
  const notices = el("div", { class: "call-notices" }); // the therapist's page puts who waits here
  const empty = el("p", { class: "stage-empty", id: "stage-empty" }, "Nobody else is in the call yet.");
  const selfTile = tile("self", `${selfName} (you)`);
  selfTile.root.classList.add("self");
  selfTile.video.muted = true;
  selfTile.video.srcObject = media.stream;
  const tiles = el("div", { class: "tiles", id: "tiles" }, selfTile.root);
  const stage = el("div", { class: "stage" }, empty, tiles);
  const side = el(
    "aside",
    { class: "side", id: "call-side", "aria-labelledby": "chat-heading" },
    sideHeading,
    chatLog,
    chatForm,
    el("p", { class: "hint" }, "Chat is not saved."),
    el("details", { class: "devices" }, el("summary", {}, "Camera and microphone"), media.controls({ preview: false })),
    sideClose,
  );
  const section = el(
    "section",
    { class: "call", "data-panel": "stage", "aria-labelledby": "call-heading" },
    el("div", { class: "call-top" }, el("div", { class: "call-status" }, heading, state, quality, recording), notices, consentSlot, errorLine, mediaNote),
    stage,
    el("div", { class: "controls", id: "call-controls" }, micButton, camButton, screenButton, sideButton, leaveButton, rejoinButton),
    side,
  );
  container.replaceChildren(section);
  heading.focus({ preventScroll: true }); // the page changed to the call: start reading here

  const peers = new Map(); // peer id -> tile with its MediaStream
  const screens = new Map(); // peer id -> tile
  const byMid = new Map(); // mid -> { peer, source, track }
  let audioOn = Boolean(media.microphone?.enabled);
  let videoOn = Boolean(media.camera?.enabled);
  let recordingInfo = null;

  function tile(id, name, source = "camera") {
    const video = el("video", { autoplay: "", playsinline: "" });
    const label = el("span", { class: "name" }, name);
    const flags = el("span", { class: "flags" });
    const placeholder = el("div", { class: "camera-off", "aria-hidden": "true" }, "Camera off");
    const root = el(
      "figure",
      { class: `tile ${source}`, "data-peer": id, "data-source": source },
      video,
      placeholder,
      el("figcaption", {}, label, flags),
    );
    const stream = new MediaStream();
    if (id !== "self") video.srcObject = stream;
    return { root, video, label, flags, stream };
  }

  function showMedia(t, audio, video) {
    t.root.dataset.audio = audio;
    t.root.dataset.video = video;
    t.flags.replaceChildren(
      ...[audio ? null : "Muted", video ? null : "Camera off"].filter(Boolean).map((word) => el("span", { class: "flag" }, word)),
    );
  }

  function showButtons() {
    const mic = media.microphone;
    const cam = media.camera;
    micButton.disabled = !mic;
    micButton.textContent = !mic ? "No microphone" : audioOn ? "Mute" : "Unmute";
    camButton.disabled = !cam;
    camButton.textContent = !cam ? "No camera" : videoOn ? "Stop video" : "Start video";
    showMedia(selfTile, audioOn, videoOn);
  }

  function tellMedia() {
    showButtons();
    call.setMedia(audioOn, videoOn);
  }

  function showStage() {
    stage.dataset.others = String(peers.size);
    empty.classList.toggle("hidden", peers.size > 0);
  }

  // Names as the recording indicator says them: "you" for this page's own person.
  function nameOf(id) {
    if (id === call.id) return "you";
    return peers.get(id)?.label.textContent || "someone who is joining";
  }

  function showRecording() {
    const words = recordingWords(recordingInfo, nameOf);
    // Only a change is written: a screen reader announces every write to a live region.
    if (recording.textContent !== words) recording.textContent = words;
    recording.dataset.state = recordingInfo ? recordingInfo.state : "unknown";
    recording.dataset.status = recordingInfo ? recordingInfo.status : "unknown";
    recording.dataset.who = recordingInfo ? (recordingInfo.who || []).join(" ") : "";
  }

  let unread = 0;
  function openSide(open) {
    section.dataset.panel = open ? "side" : "stage";
    sideButton.setAttribute("aria-expanded", String(open));
    unread = 0;
    sideButton.textContent = "Chat";
    (open ? sideHeading : sideButton).focus();
  }

  const consent = mountConsent(consentSlot, call, {
    therapist,
    names: (id) => (id === call.id ? "You" : peers.get(id)?.label.textContent || id),
  });

  call.local = { camera: media.camera, microphone: media.microphone };
  call.media = { audio: audioOn, video: videoOn };
  let hadCamera = Boolean(media.camera);
  let hadMicrophone = Boolean(media.microphone);
  media.onchange = (source, track) => {
    // A switched device keeps the person's on/off choice; one that was missing starts on.
    if (source === "camera") {
      videoOn = Boolean(track) && (videoOn || !hadCamera);
      hadCamera = Boolean(track);
      if (track) track.enabled = videoOn;
    } else {
      audioOn = Boolean(track) && (audioOn || !hadMicrophone);
      hadMicrophone = Boolean(track);
      if (track) track.enabled = audioOn;
    }
    call.setLocalTrack(source, track);
    selfTile.video.srcObject = media.stream;
    mediaNote.textContent = media.error || "";
    tellMedia();
  };
  showButtons();
  showStage();
  showRecording();

  call.onstate = (s) => {
    state.textContent = STATE_TEXT[s] || s;
    state.dataset.state = s;
    if (s === "left") {
      recording.classList.add("hidden"); // not in the call: this page has no word on the recorder
      recordingInfo = null;
    }
  };
  call.onjoined = () => {
    recording.classList.remove("hidden");
    consent.joined();
  };
  call.onerror = (text) => {
    errorLine.textContent = text;
  };
  call.onrecording = (info) => {
    recordingInfo = info;
    showRecording();
    consent.recording(info);
  };
  call.onclosed = (reason, text) => {
    state.textContent = STATE_TEXT[reason] || STATE_TEXT.ended;
    state.dataset.state = reason;
    recording.classList.add("hidden");
    if (text) errorLine.textContent = text;
    state.focus();
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
      showMedia(t, person.audio, person.video);
    }
    for (const [id, t] of [...peers, ...screens]) {
      if (!present.has(id)) {
        t.root.remove();
        peers.delete(id);
        screens.delete(id);
      }
    }
    showStage();
    showRecording(); // names may have arrived for whom the indicator speaks of
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
      showStage();
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
    if (!side.checkVisibility()) sideButton.textContent = `Chat (${++unread} new)`; // a phone's closed panel
  };

  micButton.addEventListener("click", () => {
    audioOn = !audioOn;
    if (media.microphone) media.microphone.enabled = audioOn;
    tellMedia();
  });
  camButton.addEventListener("click", () => {
    videoOn = !videoOn;
    if (media.camera) media.camera.enabled = videoOn;
    tellMedia();
  });
  screenButton?.addEventListener("click", async () => {
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
  sideButton.addEventListener("click", () => openSide(section.dataset.panel !== "side"));
  sideClose.addEventListener("click", () => openSide(false));
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
    showStage();
    leaveButton.classList.add("hidden");
    rejoinButton.classList.remove("hidden");
    rejoinButton.focus();
  });
  rejoinButton.addEventListener("click", () => {
    rejoinButton.classList.add("hidden");
    leaveButton.classList.remove("hidden");
    leaveButton.focus();
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
