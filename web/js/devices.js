// The person's own camera and microphone: opening them (only when asked), choosing among devices,
// previewing, and closing them all for good when the session is over.
import { problemKind, whatHappened } from "./devicehelp.js";
import { el } from "./dom.js";

const SOURCES = ["camera", "microphone"];

function getUserMedia(constraints) {
  if (!navigator.mediaDevices?.getUserMedia) {
    // No API at all: an old browser, or a page that is not a secure context.
    return Promise.reject(new TypeError("getUserMedia is not available"));
  }
  return navigator.mediaDevices.getUserMedia(constraints);
}

export class LocalMedia {
  constructor() {
    this.stream = new MediaStream();
    this.cameraId = "";
    this.microphoneId = "";
    this.wanted = { camera: true, microphone: true };
    this.problems = { camera: null, microphone: null }; // source -> {kind, name} after a failure
    this.error = ""; // the problems in one line, for the call screen
    this.closed = false; // after close(), for good: any track still arriving is stopped at once
    this.onchange = () => {}; // (source, track) after a device switch
  }

  get camera() {
    return this.stream.getVideoTracks()[0] || null;
  }

  get microphone() {
    return this.stream.getAudioTracks()[0] || null;
  }

  _constraints(source) {
    if (source === "camera") {
      return { video: this.cameraId ? { deviceId: { exact: this.cameraId } } : { width: 640, height: 480 } };
    }
    return { audio: this.microphoneId ? { deviceId: { exact: this.microphoneId } } : true };
  }

  /** Ask for the wanted devices: one request (one browser prompt), then one per device if it fails,
   * to learn which one it was. Each device's problem is left in `problems`. */
  async open({ camera = true, microphone = true } = {}) {
    this.wanted = { camera, microphone };
    this.problems = { camera: null, microphone: null };
    if (!camera) this._set("camera", null);
    if (!microphone) this._set("microphone", null);
    if (camera && microphone) {
      try {
        const stream = await getUserMedia({ ...this._constraints("camera"), ...this._constraints("microphone") });
        this._set("camera", stream.getVideoTracks()[0] || null);
        this._set("microphone", stream.getAudioTracks()[0] || null);
        // A stream short of a kind (a wrapped getUserMedia may return only video): ask for it alone.
        if (!this.camera) await this._replace("camera");
        if (!this.microphone) await this._replace("microphone");
      } catch {
        await this._replace("camera");
        await this._replace("microphone");
      }
    } else if (camera || microphone) {
      await this._replace(camera ? "camera" : "microphone");
    }
    this._summarise();
  }

  /** Switch one source to the chosen device (or reopen it after a failure). */
  async use(source, deviceId) {
    if (source === "camera") this.cameraId = deviceId;
    else this.microphoneId = deviceId;
    await this._replace(source);
    this._summarise();
  }

  async _replace(source) {
    try {
      const stream = await getUserMedia(this._constraints(source));
      this.problems[source] = null;
      this._set(source, stream.getTracks()[0] || null);
    } catch (error) {
      this.problems[source] = { kind: problemKind(error), name: error?.name || "Error" };
      this._set(source, null);
    }
  }

  _set(source, track) {
    if (this.closed) {
      track?.stop(); // a request that was still open when the session ended for this page
      return;
    }
    const old = source === "camera" ? this.camera : this.microphone;
    if (old === track) return;
    if (old) {
      old.stop();
      this.stream.removeTrack(old);
    }
    if (track) this.stream.addTrack(track);
    this.onchange(source, track);
  }

  _summarise() {
    this.error = SOURCES.filter((s) => this.problems[s])
      .map((s) => whatHappened(s, this.problems[s].kind))
      .join(" ");
  }

  /** Stop every track for good: the camera light goes off and nothing is captured any more. */
  close() {
    this.closed = true;
    for (const track of this.stream.getTracks()) {
      track.stop();
      this.stream.removeTrack(track);
    }
    this.onchange = () => {};
  }

  /** Device pickers wired to this media, with a preview video unless the page shows one itself. */
  controls({ preview: withPreview = true } = {}) {
    const preview = el("video", { class: "preview", autoplay: "", playsinline: "", muted: "" });
    preview.muted = true;
    preview.srcObject = this.stream;
    const cameraSelect = el("select", { class: "camera-select", "aria-label": "Camera" });
    const micSelect = el("select", { class: "microphone-select", "aria-label": "Microphone" });
    const problem = el("p", { class: "error media-error" }, this.error);
    const fill = async () => {
      const devices = navigator.mediaDevices ? await navigator.mediaDevices.enumerateDevices() : [];
      const options = (kind, current) =>
        devices
          .filter((d) => d.kind === kind)
          .map((d, i) => {
            const option = el("option", { value: d.deviceId }, d.label || `${kind === "videoinput" ? "Camera" : "Microphone"} ${i + 1}`);
            option.selected = d.deviceId === current;
            return option;
          });
      cameraSelect.replaceChildren(...options("videoinput", this.camera?.getSettings().deviceId));
      micSelect.replaceChildren(...options("audioinput", this.microphone?.getSettings().deviceId));
      problem.textContent = this.error;
      preview.classList.toggle("hidden", !this.camera);
    };
    cameraSelect.addEventListener("change", async () => {
      await this.use("camera", cameraSelect.value);
      preview.srcObject = this.stream;
      await fill();
    });
    micSelect.addEventListener("change", async () => {
      await this.use("microphone", micSelect.value);
      await fill();
    });
    fill();
    return el(
      "div",
      { class: "media-setup" },
      withPreview ? preview : null,
      el("label", {}, "Camera ", cameraSelect),
      el("label", {}, "Microphone ", micSelect),
      problem,
    );
  }
}
