// The therapist's recordings: list, download the encrypted file, delete. Both actions ask for a
// fresh authenticator code when the server says so (step-up).
import { api, onSubmit, setCsrf, show } from "./api.js";
import { el } from "./dom.js";

const errorBox = document.getElementById("recordings-error");
const stepUpForm = document.getElementById("step-up-form");
let retry = null;

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

function row(recording) {
  const started = new Date(recording.started_at * 1000);
  const seconds = recording.ended_at ? Math.round(recording.ended_at - recording.started_at) : 0;
  const kib = recording.bytes ? `${Math.round(recording.bytes / 1024)} KiB` : "–";
  return el(
    "tr",
    { "data-recording": recording.id },
    el("td", {}, started.toLocaleString()),
    el("td", {}, `${Math.floor(seconds / 60)} min ${seconds % 60} s`),
    el("td", {}, recording.participants.join(", ")),
    el("td", {}, kib),
    el("td", { title: recording.end_reason || "" }, recording.state),
    el(
      "td",
      {},
      el("button", { type: "button", class: "secondary download", onclick: () => withStepUp(() => download(recording)) }, "Download"),
      " ",
      el(
        "button",
        {
          type: "button",
          class: "danger delete",
          onclick: () => {
            if (!confirm("Delete this recording for good?")) return;
            withStepUp(async () => {
              await api(`/api/recordings/${encodeURIComponent(recording.id)}/delete`, {});
              await load();
            });
          },
        },
        "Delete",
      ),
    ),
  );
}

async function load() {
  const { recordings } = await api("/api/recordings");
  document.getElementById("recordings").replaceChildren(...recordings.map(row));
  show(document.getElementById("recordings-table"), recordings.length > 0);
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
