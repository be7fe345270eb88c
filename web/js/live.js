// The page's WebSocket to /ws: pushes from the server, a ping to show the page is alive,
// and reconnection with back-off when the network drops.

// Close codes after which reconnecting would not help (vsession/rooms/registry.py); the close
// reason says why, in words for the person.
export const SIGNED_OUT = 4401; // the sign-in this page used has ended
export const REPLACED = 4409; // a newer page took this one's place
export const FINAL_CLOSES = { [SIGNED_OUT]: "signed-out", [REPLACED]: "replaced" };

// onStatus(state, reason): "connected", "reconnecting", or a final "signed-out" / "replaced".
export function connect(query, onMessage, onStatus = () => {}) {
  const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws?${query}`;
  let delay = 500;
  let socket = null;
  let stopped = false;
  let pinger = null;

  function open() {
    socket = new WebSocket(url);
    socket.addEventListener("open", () => {
      delay = 500;
      onStatus("connected");
      pinger = setInterval(() => socket.send(JSON.stringify({ type: "ping" })), 60000);
    });
    socket.addEventListener("message", (event) => {
      try {
        onMessage(JSON.parse(event.data));
      } catch (error) {
        console.warn("bad message from server", error);
      }
    });
    socket.addEventListener("close", (event) => {
      clearInterval(pinger);
      if (stopped) return;
      if (event.code in FINAL_CLOSES) {
        stopped = true;
        onStatus(FINAL_CLOSES[event.code], event.reason);
        return;
      }
      onStatus("reconnecting");
      setTimeout(open, delay);
      delay = Math.min(delay * 2, 10000);
    });
  }

  open();
  return {
    stop() {
      stopped = true;
      socket?.close();
    },
  };
}
