// The Socket.IO connection (docs/protocol.md): every client event is acknowledged.
// The seat's token lives in sessionStorage, so a reload takes the seat back.

const KEY = "punchline.seat";

export function loadSeat() {
  try {
    return JSON.parse(sessionStorage.getItem(KEY) || "null");
  } catch {
    return null;
  }
}

export function saveSeat(seat) {
  sessionStorage.setItem(KEY, JSON.stringify(seat));
}

export function clearSeat() {
  sessionStorage.removeItem(KEY);
}

export function connect(handlers) {
  // auth is a function: each reconnection reads the current seat (it may have changed).
  const socket = window.io({
    transports: ["websocket"],
    auth: (cb) => {
      const seat = loadSeat();
      cb(seat ? { token: seat.token } : {});
    },
  });
  for (const [event, fn] of Object.entries(handlers)) socket.on(event, fn);
  return {
    socket,
    async call(event, payload = {}) {
      try {
        return await socket.timeout(10000).emitWithAck(event, payload);
      } catch {
        return { ok: false, error: { code: "timeout", message: "the server did not answer" } };
      }
    },
  };
}
