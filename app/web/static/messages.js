// Readable text for the protocol's error codes and round endings (docs/protocol.md).

const ERRORS = {
  rate_limited: "Slow down: too many actions at once. Try again in a moment.",
  room_full: "That room is full.",
  room_not_found: "No room has that code. Check it and try again.",
  name_taken: "Someone in that room already has that name. Pick another.",
  invalid_name: "That name can't be used. Use 1 to 20 visible characters.",
  invalid_settings: "Those settings can't be used.",
  invalid_payload: "That input isn't valid.",
  not_host: "Only the host can do that.",
  not_czar: "Only the czar picks the winner.",
  wrong_phase: "That isn't possible right now.",
  not_enough_players: "At least 3 players are needed to start.",
  not_enough_cards: "The chosen decks don't have enough cards for this many players.",
  too_many_rooms: "Too many rooms were created from your address. Wait a little.",
  too_many_joins: "Too many join attempts from your address. Wait a little.",
  too_many_connections: "Too many open connections from your address.",
  already_submitted: "You already submitted this round.",
  invalid_cards: "Those cards can't be played.",
  timeout: "The server did not answer. Check your connection.",
  kicked: "The host removed you from the room.",
  session_replaced: "You opened this seat in another tab or window; this one is closed.",
  session_expired: "Your seat is gone (left, removed or the room closed). Create or join a room.",
  internal: "Something went wrong on the server.",
};

export function errorText(error) {
  if (!error) return "Something went wrong.";
  const base = ERRORS[error.code];
  // Settings and payload refusals carry the useful detail in the server's message.
  if (!base || ["invalid_settings", "invalid_payload", "rate_limited", "too_many_rooms",
    "too_many_joins", "not_enough_cards"].includes(error.code)) {
    return base ? `${base} (${error.message})` : error.message || error.code;
  }
  return base;
}

const ENDINGS = {
  submit_timeout: "Time ran out and nobody submitted: new round.",
  judge_timeout: "The czar ran out of time: nobody scores, cards go back to hands.",
  czar_left: "The czar left: the round is void, cards go back to hands.",
  not_enough_players: "Fewer than 3 players are left: the round is void.",
};

export function roundEndedText(reason) {
  return ENDINGS[reason] ?? null;
}
