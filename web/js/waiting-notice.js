// The therapist's call page: who is in the waiting room, seen and heard, and let in from here
// with the dashboard's own admit API. The list comes from the server at every change it pushes.
import { api } from "./api.js";
import { el } from "./dom.js";

let audio = null;

/** Make the sound possible: browsers allow audio that a click started. Call it from a click. */
export function unlockSound() {
  const Context = window.AudioContext || window.webkitAudioContext;
  if (!audio && Context) audio = new Context();
  audio?.resume().catch(() => {});
}

// Two short soft tones: noticeable in a quiet room, not alarming in a session.
function chime() {
  if (!audio) unlockSound();
  if (!audio) return;
  const start = audio.currentTime + 0.02;
  [660, 880].forEach((frequency, i) => {
    const at = start + i * 0.18;
    const tone = audio.createOscillator();
    const gain = audio.createGain();
    tone.frequency.value = frequency;
    gain.gain.setValueAtTime(0.0001, at);
    gain.gain.exponentialRampToValueAtTime(0.15, at + 0.02);
    gain.gain.exponentialRampToValueAtTime(0.0001, at + 0.16);
    tone.connect(gain).connect(audio.destination);
    tone.start(at);
    tone.stop(at + 0.17);
  });
}

function together(names) {
  if (names.length < 2) return names.join("");
  return `${names.slice(0, -1).join(", ")} and ${names[names.length - 1]}`;
}

/**
 * onChange({title, waiting, ended}): the session's title, how many wait, and whether it is no
 * longer open (ended here, on the dashboard or by the clock), after every refresh.
 * @returns {{refresh(): Promise<void>}} refresh at every "sessions_changed" and (re)join.
 */
export function mountWaiting(slot, sessionId, { onError, onChange }) {
  const list = el("ul", { class: "waiting-list", id: "waiting-list" });
  const box = el(
    "section",
    { class: "waiting-notice hidden", id: "waiting-notice", "aria-labelledby": "waiting-title" },
    el("h2", { id: "waiting-title" }, "In the waiting room"),
    list,
  );
  const announce = el("p", { class: "visually-hidden", id: "waiting-announce", role: "status" });
  slot.append(box, announce);
  const base = `/api/sessions/${encodeURIComponent(sessionId)}`;
  let known = new Set();
  let asked = 0;

  function admitButton(seat, name) {
    const button = el("button", { type: "button", class: "admit", "data-seat": seat.seat }, `Let ${name} in`);
    button.addEventListener("click", async () => {
      button.disabled = true;
      try {
        await api(`${base}/seats/${seat.seat}/admit`, {});
        await refresh();
      } catch (error) {
        button.disabled = false;
        onError(error);
      }
    });
    return button;
  }

  async function refresh() {
    const mine = ++asked;
    const { sessions } = await api("/api/sessions");
    if (mine !== asked) return; // a later answer is on its way
    const session = sessions.find((s) => s.id === sessionId);
    const waiting = session ? session.seats.filter((seat) => seat.state === "waiting") : [];
    const nameOf = (seat) => seat.name || `Client ${seat.seat}`;
    const arrived = waiting.filter((seat) => !known.has(seat.seat));
    known = new Set(waiting.map((seat) => seat.seat));
    list.replaceChildren(
      ...waiting.map((seat) =>
        el(
          "li",
          { "data-seat": seat.seat },
          el("span", { class: "who" }, `${nameOf(seat)} is waiting${seat.online ? "" : " (their page is closed)"}`),
          admitButton(seat, nameOf(seat)),
        ),
      ),
    );
    box.classList.toggle("hidden", waiting.length === 0);
    box.classList.toggle("arrived", arrived.length > 0);
    onChange({ title: session?.title, waiting: waiting.length, ended: !session });
    if (!waiting.length) announce.textContent = "";
    if (arrived.length) {
      const names = together(arrived.map(nameOf));
      announce.textContent = `${names} ${arrived.length > 1 ? "are" : "is"} waiting to join.`;
      chime();
    }
  }

  return { refresh };
}
