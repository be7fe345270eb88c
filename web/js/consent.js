// The consent dialog, the always-visible withdraw button, and (for the therapist) the record
// controls with everyone's answers. The page shows; the server decides.
import { el } from "./dom.js";

const ANSWER_TEXT = { accept: "agreed", decline: "declined", withdraw: "withdrew", pending: "not answered yet" };

export function mountConsent(container, call, { therapist, names }) {
  const text = el("div", { class: "consent-text", id: "consent-text" });
  const accept = el("button", { type: "button", id: "consent-accept" }, "I agree to be recorded");
  const decline = el("button", { type: "button", id: "consent-decline", class: "secondary" }, "I do not agree");
  const dialog = el(
    "dialog",
    { id: "consent-dialog", "aria-labelledby": "consent-title" },
    el("h2", { id: "consent-title" }, "May this session be recorded?"),
    text,
    el("div", { class: "consent-buttons" }, accept, decline),
  );
  // Only an explicit answer closes it: no Escape, and a click outside does nothing.
  dialog.addEventListener("cancel", (event) => event.preventDefault());
  const withdraw = el("button", { type: "button", id: "withdraw-consent", class: "danger hidden" }, "Stop recording me");
  const controls = el("div", { class: "record-controls" }, withdraw);
  let current = null;

  function close() {
    if (dialog.open) dialog.close();
    current = null;
  }
  function answer(kind) {
    if (!current) return;
    call.answerConsent(current.request, current.prompt, kind);
    withdraw.classList.toggle("hidden", kind !== "accept");
    close();
  }
  accept.addEventListener("click", () => answer("accept"));
  decline.addEventListener("click", () => answer("decline"));
  withdraw.addEventListener("click", () => {
    call.withdrawConsent();
    withdraw.classList.add("hidden");
  });

  call.onconsentprompt = (message) => {
    current = message;
    text.textContent = message.text;
    if (!dialog.open) dialog.showModal();
  };
  call.onconsentclosed = () => {
    close();
    withdraw.classList.add("hidden");
  };

  if (therapist) {
    const record = el("button", { type: "button", id: "record-toggle" }, "Ask to record");
    const again = el("button", { type: "button", id: "record-ask-again", class: "secondary hidden" }, "Ask again");
    const answers = el("ul", { class: "consent-answers", id: "consent-answers" });
    let active = false;
    record.addEventListener("click", () => call.record(active ? "stop" : "request"));
    again.addEventListener("click", () => call.record("ask_again"));
    call.onconsentstatus = (status) => {
      active = Boolean(status.request);
      record.textContent = active ? "Stop recording" : "Ask to record";
      const waiting = Object.values(status.answers).some((a) => a !== "accept");
      again.classList.toggle("hidden", !active || !waiting);
      answers.replaceChildren(
        ...Object.entries(status.answers)
          .filter(() => active)
          .map(([peer, value]) =>
            el("li", { "data-peer": peer, "data-answer": value }, `${names(peer)}: ${ANSWER_TEXT[value] || value}`),
          ),
      );
    };
    controls.prepend(record, again);
    controls.append(answers);
  }
  container.append(controls, dialog);
}
