// The consent dialog, the withdraw button, and (for the therapist) the record controls with
// everyone's answers. The page shows; the server decides.
import { el } from "./dom.js";

const ANSWER_TEXT = { accept: "agreed", decline: "declined", withdraw: "withdrew", pending: "not answered yet" };

/**
 * @returns {{recording(info: object | null): void, joined(): void}} what the call page tells it:
 * the server's word on the recorder (null in an outage), and a (re)join, which voids an accept.
 */
export function mountConsent(container, call, { therapist, names }) {
  const text = el("div", { class: "consent-text", id: "consent-text" });
  const accept = el("button", { type: "button", id: "consent-accept" }, "I agree to be recorded");
  const decline = el("button", { type: "button", id: "consent-decline", class: "secondary" }, "I do not agree");
  // Focus goes to the question, not to a button: Enter or Space must not answer for the person.
  const title = el("h2", { id: "consent-title", tabindex: "-1" }, "May this session be recorded?");
  const dialog = el(
    "dialog",
    { id: "consent-dialog", "aria-labelledby": "consent-title", "aria-describedby": "consent-text" },
    title,
    text,
    el("div", { class: "consent-buttons" }, accept, decline),
  );
  // Only an explicit answer closes it: no Escape, and a click outside does nothing.
  dialog.addEventListener("cancel", (event) => event.preventDefault());
  const withdraw = el("button", { type: "button", id: "withdraw-consent", class: "danger hidden" }, "Withdraw my consent");
  const controls = el("div", { class: "record-controls" }, withdraw);
  let current = null;
  let accepted = false; // this person's accept, as far as this page knows
  let info = null;

  function showWithdraw() {
    const mine = (info?.who || []).includes(call.id);
    const live = info && (info.status === "recording" || (["asking", "declined", "withdrew"].includes(info.status) && !mine));
    withdraw.classList.toggle("hidden", !(accepted && live));
    withdraw.textContent = info?.status === "recording" ? "Stop recording me" : "Withdraw my consent";
  }
  function close() {
    if (dialog.open) dialog.close();
    current = null;
  }
  function answer(kind) {
    if (!current) return;
    call.answerConsent(current.request, current.prompt, kind);
    accepted = kind === "accept";
    close();
    showWithdraw();
  }
  accept.addEventListener("click", () => answer("accept"));
  decline.addEventListener("click", () => answer("decline"));
  withdraw.addEventListener("click", () => {
    call.withdrawConsent();
    accepted = false;
    showWithdraw();
  });

  call.onconsentprompt = (message) => {
    current = message;
    accepted = false;
    showWithdraw();
    text.textContent = message.text;
    if (!dialog.open) dialog.showModal();
    title.focus();
  };
  call.onconsentclosed = () => {
    close();
    accepted = false;
    showWithdraw();
  };

  let showRecord = () => {};
  if (therapist) {
    const record = el("button", { type: "button", id: "record-toggle" }, "Ask to record");
    const again = el("button", { type: "button", id: "record-ask-again", class: "secondary hidden" }, "Ask again");
    const answers = el("ul", { class: "consent-answers", id: "consent-answers" });
    let active = false;
    let waiting = false;
    record.addEventListener("click", () => call.record(active ? "stop" : "request"));
    again.addEventListener("click", () => call.record("ask_again"));
    // No stop button for a recording that does not exist: while nothing is written, the same
    // button ends the request instead, and says so.
    showRecord = () => {
      record.disabled = !info;
      again.disabled = !info;
      if (!active) record.textContent = "Ask to record";
      else record.textContent = info?.status === "recording" ? "Stop recording" : "Cancel the recording request";
      record.dataset.action = active ? "stop" : "request";
      again.classList.toggle("hidden", !active || !waiting);
    };
    call.onconsentstatus = (status) => {
      active = Boolean(status.request);
      waiting = Object.values(status.answers).some((a) => a !== "accept");
      answers.replaceChildren(
        ...Object.entries(status.answers)
          .filter(() => active)
          .map(([peer, value]) =>
            el("li", { "data-peer": peer, "data-answer": value }, `${names(peer)}: ${ANSWER_TEXT[value] || value}`),
          ),
      );
      showRecord();
    };
    controls.prepend(record, again);
    controls.append(answers);
    showRecord();
  }
  container.append(controls, dialog);
  return {
    recording(next) {
      info = next;
      showWithdraw();
      showRecord();
    },
    joined() {
      // The server voids an accept when its page leaves or rejoins, and asks again.
      accepted = false;
      showWithdraw();
    },
  };
}
