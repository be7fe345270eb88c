// The therapist's session list: seats, links and the waiting room, refreshed on every server push.
import { api } from "./api.js";
import { el } from "./dom.js";

const STATE_TEXT = {
  invited: "link not used yet",
  joined: "opened the link",
  waiting: "waiting",
  admitted: "in the session",
  denied: "denied",
  removed: "removed",
};

// hooks: { onError(error), onChange() } — onChange runs after every action that succeeded.
export function renderSessions(container, sessions, hooks) {
  container.replaceChildren(...sessions.map((session) => renderSession(session, hooks)));
}

function act(path, hooks) {
  return async (event) => {
    event.target.disabled = true;
    try {
      await api(path, {});
      await hooks.onChange();
    } catch (error) {
      hooks.onError(error);
    } finally {
      event.target.disabled = false;
    }
  };
}

function renderSession(session, hooks) {
  const when = new Date(session.starts_at * 1000);
  const base = `/api/sessions/${encodeURIComponent(session.id)}`;
  return el(
    "section",
    { class: "session", "data-session": session.id },
    el("h2", {}, session.title || "Session"),
    el("p", { class: "when" }, `${when.toLocaleString()} · ${session.duration_minutes} minutes`),
    el("a", { class: "button open-call", href: `/call/${encodeURIComponent(session.id)}` }, "Open call"),
    ...session.seats.map((seat) => renderSeat(base, seat, hooks)),
    el("button", { type: "button", class: "danger end-session", onclick: act(`${base}/end`, hooks) }, "End session"),
  );
}

function renderSeat(base, seat, hooks) {
  const seatPath = `${base}/seats/${seat.seat}`;
  const actions = [];
  if (seat.state === "waiting") {
    actions.push(el("button", { type: "button", class: "admit", onclick: act(`${seatPath}/admit`, hooks) }, "Admit"));
    actions.push(el("button", { type: "button", class: "secondary deny", onclick: act(`${seatPath}/deny`, hooks) }, "Deny"));
  }
  if (seat.state === "admitted") {
    actions.push(el("button", { type: "button", class: "secondary remove", onclick: act(`${seatPath}/remove`, hooks) }, "Remove"));
  }
  actions.push(
    el("button", { type: "button", class: "secondary reissue", onclick: act(`${seatPath}/reissue`, hooks) }, "New link"),
  );
  const link = seat.link
    ? el("div", { class: "link" }, el("span", { class: "link-text" }, seat.link), " ",
        el("button", { type: "button", class: "secondary copy", onclick: () => navigator.clipboard?.writeText(seat.link) }, "Copy"))
    : null;
  const reuse = seat.reuse_attempts
    ? el("span", { class: "badge denied reuse" }, `link tried again on another device ×${seat.reuse_attempts}`)
    : null;
  return el(
    "div",
    { class: "seat", "data-seat": seat.seat, "data-state": seat.state },
    el(
      "span",
      { class: "who" },
      el("strong", {}, seat.name || `Seat ${seat.seat}`), " ",
      el("span", { class: `badge ${seat.state}` }, STATE_TEXT[seat.state] || seat.state),
      seat.online ? el("span", { class: "badge online" }, "online") : null,
      reuse,
      link,
    ),
    ...actions,
  );
}
