// The recording indicator's words, from what the server says about the recorder
// (vsession/consent/indicator.py): exactly one sentence, naming people by the names this page
// already shows. Without a current word from the server it says so, never the last one it heard.

export const UNCONFIRMED = "Cannot confirm the recording state right now";

function together(names) {
  if (names.length < 2) return names.join("");
  return `${names.slice(0, -1).join(", ")} and ${names[names.length - 1]}`;
}

/**
 * @param {{status: string, who: string[]} | null} info the server's latest word; null in an outage
 * @param {(id: string) => string} nameOf a participant's name as shown here ("you" for oneself)
 */
export function recordingWords(info, nameOf) {
  if (!info) return UNCONFIRMED;
  const who = together((info.who || []).map(nameOf));
  switch (info.status) {
    case "recording":
      return "Recording";
    case "asking":
      return who ? `Asking everyone for consent (waiting for: ${who})` : "Asking everyone for consent";
    case "declined":
      return `Not recording: ${who} declined`;
    case "withdrew":
      return `Not recording: ${who} withdrew consent`;
    case "stopped":
      return "Recording stopped";
    default:
      return "Not recording";
  }
}
