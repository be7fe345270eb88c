// The privacy notice, shown before anything else. The server stores the acknowledgement with the
// notice's version and SHA-256, and refuses a seat in the waiting room without it.
import { api } from "./api.js";
import { el } from "./dom.js";

// Paragraphs are separated by blank lines; a paragraph's first line is its heading when more follow
// (vsession/rooms/notice.py).
function paragraphs(text) {
  return text
    .split(/\n\s*\n/)
    .map((block) => block.trim())
    .filter(Boolean)
    .map((block) => {
      const [first, ...rest] = block.split("\n");
      if (!rest.length) return [el("p", {}, first)];
      return [el("h2", {}, first), el("p", {}, rest.join("\n"))];
    })
    .flat();
}

function render(panel, notice) {
  const practice = panel.querySelector("#practice-name");
  practice.textContent = notice.practice;
  practice.classList.toggle("hidden", !notice.practice);
  panel.querySelector("#notice-text").replaceChildren(...paragraphs(notice.text));
  panel.querySelector("#notice-version").textContent = `Privacy notice, version ${notice.version}.`;
}

/** Show the notice (from GET `${base}/notice`) until the person acknowledges it and the server has
 * stored that. */
export function readNotice(panel, base, notice) {
  render(panel, notice);
  const button = panel.querySelector("#notice-accept");
  const errorLine = panel.querySelector("#notice-error");
  let shown = notice;
  return new Promise((resolve) => {
    const accept = async () => {
      button.disabled = true;
      errorLine.textContent = "";
      try {
        await api(`${base}/notice`, { version: shown.version, sha256: shown.sha256 });
        button.removeEventListener("click", accept);
        resolve();
      } catch (error) {
        errorLine.textContent = error.message;
        if (error.status === 409) {
          // The practice changed its notice meanwhile: show the new words, to be read again.
          const now = await api(`${base}/notice`).catch(() => null);
          if (now) {
            shown = now;
            render(panel, now);
          }
        }
      } finally {
        button.disabled = false;
      }
    };
    button.addEventListener("click", accept);
  });
}
