// The device check before the waiting room: nothing is asked of the browser until the person presses
// a button. Then a camera preview, a live microphone level, a test sound for the speaker, device
// pickers, and for each device that fails, what happened and how to allow it in this browser.
import { browserOf, howToFix, whatHappened } from "./devicehelp.js";
import { el } from "./dom.js";

const OK_TEXT = {
  camera: "Your camera is on. Only you see this preview until your therapist lets you in.",
  microphone: "Your microphone is on. Say something: the bar should move.",
};
const OFF_TEXT = {
  camera: "Camera off: you chose audio only. The others will hear you but not see you.",
  microphone: "Microphone off.",
};

export class DeviceCheck {
  constructor(panel, media) {
    this.panel = panel;
    this.media = media;
    this.mode = ""; // "" until the person chooses, then "camera+microphone" or "microphone"
    this.pending = Promise.resolve();
    this.audio = null; // AudioContext, made inside a click (browsers start audio only after a gesture)
    this.meterTimer = null;
    this.meterSource = null;
    this.browser = browserOf();
    const $ = (selector) => panel.querySelector(selector);
    this.ui = {
      allow: $("#devices-allow"),
      audioOnly: $("#join-audio-only"),
      retry: $("#devices-retry"),
      continue: $("#devices-continue"),
      check: $("#device-check"),
      summary: $("#devices-summary"),
      preview: $("#camera-preview"),
      meter: $("#mic-level"),
      speaker: $("#speaker-test"),
      speakerText: $("#speaker-status .device-what"),
      cameraSelect: $("#camera-select"),
      microphoneSelect: $("#microphone-select"),
    };
    this.finished = new Promise((resolve) => {
      this._resolve = resolve;
    });
    this.ui.allow.addEventListener("click", () => this.run("camera+microphone"));
    this.ui.audioOnly.addEventListener("click", () => this.run("microphone"));
    this.ui.retry.addEventListener("click", () => this.run(this.mode));
    this.ui.speaker.addEventListener("click", () => this.playTestSound());
    this.ui.cameraSelect.addEventListener("change", () => this.switchTo("camera", this.ui.cameraSelect.value));
    this.ui.microphoneSelect.addEventListener("change", () => this.switchTo("microphone", this.ui.microphoneSelect.value));
    this.ui.continue.addEventListener("click", async () => {
      await this.pending;
      this._resolve(this.mode);
    });
    this.onDeviceChange = () => this.fillPickers();
    navigator.mediaDevices?.addEventListener?.("devicechange", this.onDeviceChange);
  }

  /** Resolves with the person's choice when they press Continue. */
  done() {
    return this.finished;
  }

  _audioContext() {
    if (!this.audio && window.AudioContext) this.audio = new AudioContext();
    this.audio?.resume();
    return this.audio;
  }

  run(mode) {
    this._audioContext(); // still inside the click
    this.mode = mode;
    this.pending = this._open();
    return this.pending;
  }

  async _open() {
    const buttons = [this.ui.allow, this.ui.audioOnly, this.ui.retry, this.ui.continue];
    for (const button of buttons) button.disabled = true;
    this.ui.summary.textContent = "Asking your browser…";
    try {
      await this.media.open({ camera: this.mode === "camera+microphone", microphone: true });
    } finally {
      for (const button of buttons) button.disabled = false;
    }
    await this.render();
    const failed = Object.values(this.media.problems).some(Boolean);
    (failed ? this.ui.retry : this.ui.continue).focus();
  }

  async switchTo(source, deviceId) {
    this.pending = this.media.use(source, deviceId);
    await this.pending;
    await this.render();
  }

  async render() {
    const { media, ui } = this;
    ui.check.classList.remove("hidden");
    const both = this.mode === "camera+microphone";
    ui.allow.textContent = "Turn on my camera too";
    ui.allow.classList.toggle("hidden", both);
    ui.audioOnly.textContent = "Use audio only (camera off)";
    ui.audioOnly.classList.toggle("hidden", !both);
    for (const source of ["camera", "microphone"]) {
      const box = this.panel.querySelector(`#${source}-status`);
      const problem = media.problems[source];
      const on = source === "camera" ? media.camera : media.microphone;
      const wanted = source === "camera" ? both : true;
      box.dataset.state = problem ? problem.kind : on ? "on" : wanted ? "" : "off";
      box.querySelector(".device-what").textContent = problem ? whatHappened(source, problem.kind) : on ? OK_TEXT[source] : OFF_TEXT[source];
      box.querySelector(".device-how").textContent = problem ? howToFix(source, problem.kind, this.browser) : "";
      // Nothing to pick or measure without a working device.
      box.querySelector(".picker").classList.toggle("hidden", !on);
      box.querySelector(".level")?.classList.toggle("hidden", !on);
    }
    ui.preview.srcObject = media.camera ? new MediaStream([media.camera]) : null;
    ui.preview.classList.toggle("hidden", !media.camera);
    this._meter();
    const problems = Object.values(media.problems).some(Boolean);
    ui.retry.classList.toggle("hidden", !problems);
    ui.continue.classList.remove("hidden");
    ui.continue.textContent = problems ? "Continue anyway" : "Continue";
    ui.continue.classList.toggle("secondary", problems); // trying again is the way forward
    ui.summary.textContent = problems
      ? media.microphone
        ? "You can continue anyway: the others will hear you but not see you."
        : "You can continue anyway: you will see and hear the others, but they will not hear you."
      : "All set. Press Continue when you are ready.";
    await this.fillPickers();
  }

  async fillPickers() {
    const devices = navigator.mediaDevices ? await navigator.mediaDevices.enumerateDevices() : [];
    const pick = (select, kind, noun, track) => {
      const current = track?.getSettings().deviceId;
      const found = devices.filter((d) => d.kind === kind && d.deviceId);
      select.replaceChildren(
        ...found.map((d, i) => {
          const option = el("option", { value: d.deviceId }, d.label || `${noun} ${i + 1}`);
          option.selected = d.deviceId === current;
          return option;
        }),
      );
      select.disabled = !track || found.length < 2;
    };
    pick(this.ui.cameraSelect, "videoinput", "Camera", this.media.camera);
    pick(this.ui.microphoneSelect, "audioinput", "Microphone", this.media.microphone);
  }

  // The level meter: an AnalyserNode on the microphone, its loudness (RMS) every tenth of a second.
  _meter() {
    clearInterval(this.meterTimer);
    this.meterSource?.disconnect();
    this.meterSource = null;
    this.ui.meter.value = 0;
    const mic = this.media.microphone;
    const audio = this.audio;
    if (!mic || !audio) return;
    const analyser = audio.createAnalyser();
    analyser.fftSize = 1024;
    this.meterSource = audio.createMediaStreamSource(new MediaStream([mic]));
    this.meterSource.connect(analyser);
    const samples = new Float32Array(analyser.fftSize);
    this.meterTimer = setInterval(() => {
      analyser.getFloatTimeDomainData(samples);
      let sum = 0;
      for (const v of samples) sum += v * v;
      this.ui.meter.value = Math.min(1, Math.sqrt(sum / samples.length) * 5);
    }, 100);
  }

  // A short two-note chime made by oscillators: no sound file to fetch.
  playTestSound() {
    const audio = this._audioContext();
    if (!audio) {
      this.ui.speakerText.textContent = "This browser cannot play a test sound.";
      return;
    }
    const now = audio.currentTime;
    const gain = audio.createGain();
    gain.gain.setValueAtTime(0.0001, now);
    gain.gain.exponentialRampToValueAtTime(0.25, now + 0.05);
    gain.gain.exponentialRampToValueAtTime(0.0001, now + 1.2);
    gain.connect(audio.destination);
    [
      [523.25, 0],
      [659.25, 0.35],
    ].forEach(([frequency, start]) => {
      const tone = audio.createOscillator();
      tone.frequency.value = frequency;
      tone.connect(gain);
      tone.start(now + start);
      tone.stop(now + 1.2);
    });
    this.ui.speakerText.textContent =
      "Did you hear a short chime? If not, turn up the volume, check your headphones or Bluetooth, and play it again.";
  }

  /** Let go of everything: the meter, the audio, the preview. The tracks belong to `media`. */
  stop() {
    clearInterval(this.meterTimer);
    this.meterSource?.disconnect();
    this.meterSource = null;
    this.audio?.close();
    this.audio = null;
    this.ui.preview.srcObject = null;
    navigator.mediaDevices?.removeEventListener?.("devicechange", this.onDeviceChange);
  }
}
