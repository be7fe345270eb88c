// The therapist's recordings: which session, who was in it, how long, how it ended and whether
// the file is whole, in words; download the encrypted file or delete it. Both actions ask for a
// fresh authenticator code when the server says so (step-up).
import { api, onSubmit, setCsrf, show } from "./api.js";
import { el } from "./dom.js";

const errorBox = document.getElementById("recordings-error");
const stepUpForm = document.getElementById("step-up-form");
const when = new Intl.DateTimeFormat(undefined, { dateStyle: "full", timeStyle: "short" });
let retry = null;

// What the file on disk holds, for someone who will open it later.
const FILE_WORDS = {
  complete: "Complete",
  truncated: "Truncated: the end is missing, everything saved before it can be recovered",
  empty: "Nothing was recorded",
  writing: "Being recorded now",
};

async function withStepUp(action) {
  try {
    await action();
  } catch (error) {
    if (error.data?.step_up) {
      retry = action;
      show(stepUpForm);
      document.getElementById("step-up-code").focus();
    } else {
      errorBox.textContent = error.message;
    }
  }
}

onSubmit(stepUpForm, async (data) => {
  await api("/api/step-up", { code: data.get("code") });
  stepUpForm.reset();
  show(stepUpForm, false);
  if (retry) await withStepUp(retry);
});

async function download(recording) {
  const response = await fetch(`/api/recordings/${encodeURIComponent(recording.id)}/download`);
  if (!response.ok) {
    const data = await response.json().catch(() => ({}));
    const error = new Error(data.error || `The server answered ${response.status}.`);
    error.data = data;
    throw error;
  }
  const link = el("a", { href: URL.createObjectURL(await response.blob()), download: `vsession-${recording.id}.age` });
  link.click();
  URL.revokeObjectURL(link.href);
}

function length(seconds) {
  if (seconds === null || seconds === undefined) return "Still recording";
  const whole = Math.round(seconds);
  const hours = Math.floor(whole / 3600);
  const minutes = Math.floor((whole % 3600) / 60);
  const rest = whole % 60;
  if (hours) return `${hours} h ${minutes} min`;
  if (minutes) return `${minutes} min ${rest} s`;
  return `${rest} s`;
}

function size(bytes) {
  if (!bytes) return "";
  if (bytes < 1e6) return `${Math.max(1, Math.round(bytes / 1e3))} kB`;
  if (bytes < 1e9) return `${(bytes / 1e6).toFixed(1)} MB`;
  return `${(bytes / 1e9).toFixed(2)} GB`;
}

function fact(name, term, ...value) {
  return [el("dt", {}, term), el("dd", { "data-fact": name }, ...value)];
}

function remove(recording) {
  if (!confirm("Delete this recording for good?")) return;
  withStepUp(async () => {
    await api(`/api/recordings/${encodeURIComponent(recording.id)}/delete`, {});
    await load();
  });
}

function card(recording) {
  const started = when.format(new Date(recording.started_at * 1000));
  const file = el("span", { class: "file-state", "data-file": recording.file }, FILE_WORDS[recording.file] || recording.file);
  const sized = size(recording.bytes);
  const writing = recording.file === "writing";
  const actions = el("div", { class: "actions" });
  if (!writing && recording.file !== "empty") {
    actions.append(el("button", { type: "button", class: "secondary download", onclick: () => withStepUp(() => download(recording)) }, "Download"));
  }
  if (!writing) actions.append(el("button", { type: "button", class: "danger delete", onclick: () => remove(recording) }, "Delete"));
  return el(
    "article",
    { class: "recording", "data-recording": recording.id, "data-file": recording.file },
    el("h2", {}, recording.title || "Untitled session"),
    el("p", { class: "when" }, started),
    el(
      "dl",
      {},
      ...fact("people", "People", recording.people.join(", ")),
      ...fact("length", "Length", length(recording.duration_seconds)),
      ...fact("ended", "How it ended", recording.ended || "It has not ended yet"),
      ...fact("file", "File", file),
      ...(sized ? fact("size", "Size", `${sized}, encrypted`) : []),
    ),
    actions,
  );
}

async function load() {
  const { recordings } = await api("/api/recordings");
  document.getElementById("recordings").replaceChildren(...recordings.map(card));
  show(document.getElementById("no-recordings"), recordings.length === 0);
}

api("/api/me")
  .then((me) => {
    setCsrf(me.csrf);
    return load();
  })
  .catch((error) => {
    if (error.status === 401) location.assign("/login");
    else errorBox.textContent = error.message;
  });
