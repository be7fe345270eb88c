// The person's own camera and microphone: opening them, choosing among devices, previewing.
import { el } from "./dom.js";

export class LocalMedia {
  constructor() {
    this.stream = new MediaStream();
    this.cameraId = "";
    this.microphoneId = "";
    this.error = "";
    this.onchange = () => {}; // (source, track) after a device switch
  }

  get camera() {
    return this.stream.getVideoTracks()[0] || null;
  }

  get microphone() {
    return this.stream.getAudioTracks()[0] || null;
  }

  async open() {
    await this._replace("camera");
    await this._replace("microphone");
  }

  async _replace(source) {
    const video = source === "camera";
    const id = video ? this.cameraId : this.microphoneId;
    const constraints = video
      ? { video: id ? { deviceId: { exact: id } } : { width: 640, height: 480 } }
      : { audio: id ? { deviceId: { exact: id } } : true };
    let track = null;
    try {
      [track] = (await navigator.mediaDevices.getUserMedia(constraints)).getTracks();
      this.error = "";
    } catch (error) {
      this.error = `Your ${video ? "camera" : "microphone"} is not available (${error.name}). You can still join.`;
    }
    const old = video ? this.camera : this.microphone;
    if (old) {
      old.stop();
      this.stream.removeTrack(old);
    }
    if (track) this.stream.addTrack(track);
    this.onchange(source, track);
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
      const devices = await navigator.mediaDevices.enumerateDevices();
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
    };
    cameraSelect.addEventListener("change", async () => {
      this.cameraId = cameraSelect.value;
      await this._replace("camera");
      preview.srcObject = this.stream;
      await fill();
    });
    micSelect.addEventListener("change", async () => {
      this.microphoneId = micSelect.value;
      await this._replace("microphone");
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
