// The call protocol (docs/signaling.md) without any UI: one WebSocket, one RTCPeerConnection,
// the server's offers answered, local tracks attached, remote tracks announced.
// Pages use it through callbacks; tests can drive it the same way.
import { FINAL_CLOSES } from "./live.js";

/**
 * @typedef {{peer: string, source: string, kind: string}} StreamInfo
 */
export class CallConnection {
  /** @param {string} query e.g. "role=guest&session=abc" */
  constructor(query) {
    this.query = query;
    this.pc = null;
    this.ws = null;
    this.id = null;
    this.local = {}; // source -> MediaStreamTrack ("microphone", "camera", "screen")
    this.upstream = {}; // source -> mid, from the latest offer
    this.streams = {}; // mid -> StreamInfo, from the latest offer
    this.media = { audio: true, video: true }; // what the others are told: muted, camera off
    this.stopped = false;
    this.retryDelay = 500;
    this.iceTimer = null;
    // Callbacks, all optional.
    this.onstate = () => {}; // "connecting" | "connected" | "reconnecting" | "left" | "ended"
    this.onjoined = () => {};
    this.onparticipants = () => {};
    this.onstream = () => {}; // (mid, track, StreamInfo)
    this.onstreamended = () => {}; // (mid)
    this.onchat = () => {};
    // ({state, status, who, reason}) from the server (docs/signaling.md), or null while the
    // socket is down: then nothing the page heard earlier about the recorder still holds.
    this.onrecording = () => {};
    this.onerror = () => {};
    this.onclosed = () => {}; // (reason, text) the server ended our place in the call; text for people
    this.onconsentprompt = () => {}; // ({request, prompt, version, text})
    this.onconsentstatus = () => {}; // (therapist only) ({request, state, answers})
    this.onconsentclosed = () => {}; // ({request, reason})
    this.onsessionschanged = () => {}; // (therapist only) someone waits, connects or leaves
  }

  start() {
    this.stopped = false;
    this._open();
  }

  _open() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    this.ws = new WebSocket(`${scheme}://${location.host}/ws?${this.query}`);
    this.onstate("connecting");
    this.onrecording(null);
    this.ws.addEventListener("open", () => {
      this.retryDelay = 500;
      this.send({ type: "join" });
    });
    this.ws.addEventListener("message", (event) => this._message(JSON.parse(event.data)));
    this.ws.addEventListener("close", (event) => {
      if (this.stopped) return;
      this.onrecording(null);
      if (event.code in FINAL_CLOSES) {
        // Signed out, or replaced by a newer page: reconnecting would not help; say why.
        this.stop();
        this.onclosed(FINAL_CLOSES[event.code], event.reason);
        return;
      }
      this.onstate("reconnecting");
      setTimeout(() => this._open(), this.retryDelay);
      this.retryDelay = Math.min(this.retryDelay * 2, 8000);
    });
    clearInterval(this.pinger);
    this.pinger = setInterval(() => this.send({ type: "ping" }), 60000);
  }

  send(message) {
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(message));
  }

  async _message(message) {
    switch (message.type) {
      case "offer":
        await this._answer(message);
        break;
      case "joined":
        this.id = message.id;
        this.onjoined(message);
        this.onrecording({ state: message.recording, ...message.indicator });
        break;
      case "participants":
        this._tellMedia(message.list);
        this.onparticipants(message.list);
        break;
      case "sessions_changed":
        this.onsessionschanged();
        break;
      case "chat":
        this.onchat(message);
        break;
      case "recording":
        this.onrecording(message);
        break;
      case "consent_prompt":
        this.onconsentprompt(message);
        break;
      case "consent_status":
        this.onconsentstatus(message);
        break;
      case "consent_closed":
        this.onconsentclosed(message);
        break;
      case "state":
        if (["denied", "removed", "ended"].includes(message.state)) {
          this.stop();
          this.onclosed(message.state);
        }
        break;
      case "error":
        this.onerror(message.error);
        break;
      default:
        break;
    }
  }

  _newPeerConnection(iceServers) {
    this.pc?.close();
    for (const mid of Object.keys(this.streams)) this.onstreamended(mid);
    this.streams = {};
    // An explicit list, even when empty: no public STUN server unless the practice configured one.
    this.pc = new RTCPeerConnection({ iceServers, bundlePolicy: "max-bundle" });
    this.pc.addEventListener("connectionstatechange", () => this._watchConnection());
  }

  _watchConnection() {
    const state = this.pc.connectionState;
    if (state === "connected") {
      clearTimeout(this.iceTimer);
      this.onstate("connected");
    } else if (state === "failed" || state === "disconnected") {
      this.onstate("reconnecting");
      clearTimeout(this.iceTimer);
      // Give a brief network blip a moment to heal, then re-join: the server starts afresh.
      this.iceTimer = setTimeout(() => this.send({ type: "join" }), state === "failed" ? 0 : 4000);
    }
  }

  // Each offer carries TURN credentials minted for it. A connection that is up keeps its relay (coturn
  // checks a credential's expiry only when an allocation is made), but a later gathering, such as an
  // ICE restart, should use fresh ones. Everything else stays as built: browsers refuse a changed
  // bundlePolicy or certificate list, and a test's iceTransportPolicy must survive.
  _refreshIceServers(iceServers) {
    if (!iceServers) return;
    const current = this.pc.getConfiguration();
    delete current.certificates;
    try {
      this.pc.setConfiguration({ ...current, iceServers });
    } catch (error) {
      console.warn("kept the ICE servers this connection started with", error);
    }
  }

  async _answer(offer) {
    if (offer.restart || !this.pc) this._newPeerConnection(offer.iceServers || []);
    else this._refreshIceServers(offer.iceServers);
    const pc = this.pc;
    const previous = this.streams;
    this.streams = offer.streams;
    this.upstream = offer.upstream;
    await pc.setRemoteDescription({ type: "offer", sdp: offer.sdp });
    for (const [source, mid] of Object.entries(offer.upstream)) {
      const transceiver = pc.getTransceivers().find((t) => t.mid === mid);
      if (!transceiver) continue;
      const track = this.local[source] || null;
      transceiver.direction = track ? "sendonly" : "inactive";
      if (transceiver.sender.track !== track) await transceiver.sender.replaceTrack(track);
    }
    // The server reuses inactive m-lines, so a mid may now carry someone else: the end of one
    // stream and the start of another. A "track" event does not always say so (none fires if the
    // m-line never went inactive in between), so streams follow the offer's map, not events.
    const same = (a, b) => a && b && a.peer === b.peer && a.source === b.source;
    for (const [mid, info] of Object.entries(previous)) {
      if (!same(info, this.streams[mid])) this.onstreamended(mid);
    }
    for (const [mid, info] of Object.entries(this.streams)) {
      if (same(info, previous[mid])) continue;
      const transceiver = pc.getTransceivers().find((t) => t.mid === mid);
      if (transceiver) this.onstream(mid, transceiver.receiver.track, info);
    }
    await pc.setLocalDescription(await pc.createAnswer());
    await this._gathered(pc);
    this.send({ type: "answer", sdp: pc.localDescription.sdp });
  }

  // The server does not take trickled candidates: send the answer once gathering is done.
  _gathered(pc) {
    if (pc.iceGatheringState === "complete") return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        if (pc.iceGatheringState === "complete") {
          pc.removeEventListener("icegatheringstatechange", done);
          resolve();
        }
      };
      pc.addEventListener("icegatheringstatechange", done);
      setTimeout(resolve, 3000);
    });
  }

  /** Swap a local track (device change, mute) without renegotiating when the slot exists. */
  async setLocalTrack(source, track) {
    this.local[source] = track;
    const mid = this.upstream[source];
    const transceiver = this.pc?.getTransceivers().find((t) => t.mid === mid);
    if (transceiver) await transceiver.sender.replaceTrack(track);
  }

  async shareScreen(track) {
    this.local.screen = track;
    this.send({ type: "screen", on: true });
  }

  stopScreen() {
    delete this.local.screen;
    this.send({ type: "screen", on: false });
  }

  setMedia(audio, video) {
    this.media = { audio, video };
    this.send({ type: "media", audio, video });
  }

  // A rejoin (reload, reconnect, server restart) starts with the server's defaults: put it right.
  _tellMedia(list) {
    const me = list.find((p) => p.id === this.id);
    if (me && (me.audio !== this.media.audio || me.video !== this.media.video)) {
      this.send({ type: "media", ...this.media });
    }
  }

  chat(text) {
    this.send({ type: "chat", text });
  }

  /** Therapist only: "request", "stop" or "ask_again". The server refuses it from anyone else. */
  record(action) {
    this.send({ type: "record", action });
  }

  answerConsent(request, prompt, answer) {
    this.send({ type: "consent", request, prompt, answer });
  }

  withdrawConsent() {
    this.send({ type: "withdraw" });
  }

  leave() {
    this.send({ type: "leave" });
    this.stop();
    this.onstate("left");
  }

  stop() {
    this.stopped = true;
    clearInterval(this.pinger);
    clearTimeout(this.iceTimer);
    this.ws?.close();
    this.pc?.close();
    this.pc = null;
  }

  async getStats() {
    return this.pc ? this.pc.getStats() : new Map();
  }
}
