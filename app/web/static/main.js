// The Punchline web client: one page, screens rendered from the latest room_state and hand.
import { clearSeat, connect, loadSeat, saveSeat } from "./net.js";
import { deferWhilePressed, h, plainSentence, sentence, swap } from "./dom.js";
import { errorText, roundEndedText } from "./messages.js";

const $ = (id) => document.getElementById(id);
const state = {
  room: null, // latest room_state
  hand: null, // latest hand
  me: loadSeat()?.player_id ?? null,
  selected: [], // card ids in blank order
  chosen: null, // the czar's chosen submission_id
  submissions: null, // latest `submissions` event
  reveal: null, // {round, black, whites, winner, url, failed}
  closedReveal: null, // the round whose reveal the player closed
  gameOver: null,
  screen: null, // which screen's skeleton is on the page
  decks: null,
};
let net;
let deadline = null; // performance.now() when the round timer runs out
let catchUp = false; // the next room_state follows a (re)connection to a seat
const CATCH_UP_RETRY_MS = 5000;

// --- notices and banner ---------------------------------------------------------------------

function notice(text, kind = "info") {
  const item = h("p", { class: `notice ${kind}` }, text);
  $("notices").append(item);
  while ($("notices").children.length > 3) $("notices").firstElementChild.remove();
  setTimeout(() => item.remove(), 8000);
}

function banner(show) {
  $("banner").hidden = !show;
}

// --- server events --------------------------------------------------------------------------

function onRoomState(room) {
  const before = state.room;
  state.room = room;
  if (!before || before.round !== room.round || before.phase !== room.phase) {
    state.chosen = null;
    if (room.phase !== "submitting" || before?.round !== room.round) state.selected = [];
  }
  if (room.phase !== "game_over") state.gameOver = null;
  if (before && room.round < before.round) state.closedReveal = null; // a new game
  deadline = room.seconds_left == null ? null : performance.now() + room.seconds_left * 1000;
  banner(false);
  render();
  if (catchUp) {
    catchUp = false;
    catchUpReveal(room);
  }
}

// Back in a seat after a reload, or after a drop (an instance that died, a network that came
// back): the latest winner may be missing from the screen, or its video_ready may have been
// sent while this page was away. The room's history has the winner and the video's address.
async function catchUpReveal(room) {
  const latest = room.phase === "game_over" ? room.round : room.round - 1;
  if (state.reveal?.round === latest && state.reveal.url) return;
  let rounds;
  try {
    const res = await fetch(`/api/rooms/${encodeURIComponent(room.room_code)}/history`);
    if (!res.ok) return;
    ({ rounds } = await res.json());
  } catch {
    return; // a courtesy: the game goes on without it
  }
  const last = rounds.at(-1);
  if (!last || last.outcome !== "won" || last.round !== latest || !last.video_url) return;
  if (state.room?.round !== room.round || state.closedReveal === last.round) return;
  if (state.reveal?.round !== last.round) { // none, or an older round's
    state.reveal = { round: last.round, black: last.black_card, whites: last.white_cards,
      winner: last.winner_name, url: null, failed: null };
  }
  if (!state.reveal.url) {
    state.reveal.url = state.reveal.caughtUp = last.video_url;
    state.reveal.retried = false;
  }
  renderReveal();
}

// A caught-up address whose file does not load (yet): still rendering, or its render failed
// while the page was away. Wait for video_ready; try the address once more after a while; then
// say it is not there.
function caughtUpVideoFailed(r) {
  if (state.reveal !== r || !r.caughtUp || r.ready) return;
  r.url = null;
  if (r.retried) r.failed = "not available";
  else {
    r.retried = true;
    setTimeout(() => {
      if (state.reveal === r && !r.url && !r.failed) {
        r.url = r.caughtUp;
        renderReveal();
      }
    }, CATCH_UP_RETRY_MS);
  }
  renderReveal();
}

function onHand(hand) {
  state.hand = hand;
  const ids = new Set(hand.cards.map((c) => c.id));
  state.selected = state.selected.filter((id) => ids.has(id));
  render();
}

function onRoundWon(won) {
  state.reveal = { round: won.round, black: won.black_card, whites: won.white_cards,
    winner: won.winner.name, url: null, failed: null };
  renderReveal();
}

function onVideoReady(video) {
  if (state.reveal && state.reveal.round === video.round) {
    state.reveal.url = video.video_url;
    state.reveal.ready = true; // the file is there: a load error is no longer "still rendering"
    renderReveal();
  }
}

function onVideoFailed(failed) {
  if (state.reveal && state.reveal.round === failed.round) {
    state.reveal.failed = failed.reason;
    renderReveal();
  }
}

function leaveToHome(message) {
  clearSeat();
  banner(false);
  state.room = state.hand = state.me = state.reveal = state.gameOver = null;
  if (message) notice(message, "error");
  render();
  renderReveal();
}

const handlers = {
  connect: () => {
    document.body.dataset.connected = "true"; // for tests and styles: the socket is open
    banner(false);
    if (!loadSeat()) render();
    else catchUp = true;
  },
  disconnect: (reason) => {
    document.body.dataset.connected = "false";
    // The server closed us on purpose (session_replaced, too_many_connections): no retry.
    if (reason === "io server disconnect") return;
    if (state.room) banner(true);
  },
  room_state: onRoomState,
  hand: onHand,
  submissions: (subs) => {
    state.submissions = subs;
    render();
  },
  round_won: onRoundWon,
  round_ended: (ended) => {
    const text = roundEndedText(ended.reason);
    if (text) notice(text);
  },
  game_paused: () => notice("Game paused: fewer than 3 players. The host can resume when more join."),
  game_resumed: () => notice("Game resumed. Scores carry on."),
  game_over: (over) => {
    state.gameOver = over;
    render();
  },
  room_closed: (closed) => leaveToHome(`The room closed: ${closed.message}.`),
  video_ready: onVideoReady,
  video_failed: onVideoFailed,
  error: (err) => {
    if (["kicked", "session_expired"].includes(err.code)) leaveToHome(errorText(err));
    else if (err.code === "session_replaced") {
      clearSeat();
      banner(false);
      notice(errorText(err), "error");
    } else notice(errorText(err), "error");
  },
};

// --- actions --------------------------------------------------------------------------------

async function act(event, payload) {
  const ack = await net.call(event, payload);
  if (!ack.ok) notice(errorText(ack.error), "error");
  return ack;
}

function seated(ack) {
  if (!ack.ok) return;
  state.me = ack.player_id;
  saveSeat({ token: ack.token, player_id: ack.player_id, room_code: ack.room_code });
  history.replaceState(null, "", `/?room=${ack.room_code}`);
  onRoomState(ack.room);
}

function readSettings(form) {
  const num = (name) => Number(form.elements[name].value);
  const timer = (name) => (form.elements[name].value === "" ? null : num(name));
  const settings = {
    score_limit: num("score_limit"), max_players: num("max_players"), hand_size: num("hand_size"),
    submit_seconds: timer("submit_seconds"), judge_seconds: timer("judge_seconds"),
  };
  const decks = [...form.querySelectorAll("input[name=deck]:checked")].map((i) => i.value);
  if (decks.length) settings.deck_ids = decks;
  return settings;
}

// --- screens --------------------------------------------------------------------------------

function field(label, input, hint) {
  return h("label", { class: "field" }, h("span", {}, label), input, hint && h("small", {}, hint));
}

function numberInput(name, value, min, max, extra = {}) {
  return h("input", { name, type: "number", min, max, value: value ?? "", inputmode: "numeric",
    "data-key": `setting-${name}`, ...extra });
}

function deckList(chosen) {
  return h("fieldset", { class: "decks" }, h("legend", {}, "Decks"),
    (state.decks ?? [{ id: "punchline-cc0", name: "Punchline CC0", white_cards: 0, black_cards: 0 }])
      .map((d) => h("label", { class: "check" },
        h("input", { type: "checkbox", name: "deck", value: d.id, "data-key": `deck-${d.id}`,
          checked: chosen.includes(d.id) }),
        ` ${d.name}${d.white_cards ? ` (${d.black_cards} black, ${d.white_cards} white)` : ""}`)));
}

function settingsFields(s) {
  return [
    field("Points to win", numberInput("score_limit", s.score_limit ?? 7, 1, 50)),
    field("Max players", numberInput("max_players", s.max_players ?? 10, 3, 20)),
    field("Cards in hand", numberInput("hand_size", s.hand_size ?? 10, 3, 20)),
    field("Seconds to submit", numberInput("submit_seconds", s.submit_seconds, 5, 600,
      { placeholder: "no timer" }), "Empty: no timer"),
    field("Seconds to judge", numberInput("judge_seconds", s.judge_seconds, 5, 600,
      { placeholder: "no timer" }), "Empty: no timer"),
    deckList(s.deck_ids ?? ["punchline-cc0"]),
  ];
}

function homeScreen() {
  const code = new URLSearchParams(location.search).get("room") ?? "";
  const create = h("form", { class: "panel", "aria-labelledby": "create-h",
    onsubmit: async (e) => {
      e.preventDefault();
      const f = e.currentTarget;
      seated(await act("create_room", { name: f.elements.name.value, settings: readSettings(f) }));
    } },
  h("h2", { id: "create-h" }, "New game"),
  field("Your name", h("input", { name: "name", id: "create-name", required: true, maxlength: 20, autocomplete: "nickname" })),
  h("details", {}, h("summary", {}, "Settings"), h("div", { class: "grid" }, settingsFields({}))),
  h("button", { type: "submit", class: "primary" }, "Create room"));
  const join = h("form", { class: "panel", "aria-labelledby": "join-h",
    onsubmit: async (e) => {
      e.preventDefault();
      const f = e.currentTarget;
      seated(await act("join_room", { room_code: f.elements.code.value.trim(), name: f.elements.name.value }));
    } },
  h("h2", { id: "join-h" }, "Join a game"),
  field("Your name", h("input", { name: "name", id: "join-name", required: true, maxlength: 20, autocomplete: "nickname" })),
  field("Room code", h("input", { name: "code", required: true, maxlength: 16, value: code,
    autocapitalize: "characters", autocomplete: "off", spellcheck: "false", class: "code" })),
  h("button", { type: "submit", class: "primary" }, "Join room"));
  const intro = h("p", { class: "intro" },
    "Fill in the blanks with the funniest card. The czar picks a winner, and every winning line becomes a video.");
  return code ? [intro, join, create] : [intro, create, join];
}

function playerList(room, { kick = false } = {}) {
  return h("ul", { class: "players", "aria-label": "Players" }, room.players.map((p) =>
    h("li", { class: p.connected ? "" : "away" },
      h("span", { class: "pname" }, p.name, p.id === state.me ? " (you)" : ""),
      p.is_host ? h("span", { class: "tag" }, "host") : null,
      p.is_czar && room.phase !== "lobby" ? h("span", { class: "tag czar" }, "czar") : null,
      !p.connected ? h("span", { class: "tag" }, "away") : null,
      room.phase === "submitting" && !p.is_czar ? h("span", { class: "tag" }, p.submitted ? "played" : "thinking") : null,
      h("span", { class: "score", "aria-label": `${p.score} points` }, String(p.score)),
      kick && p.id !== state.me
        ? h("button", { class: "small", "data-key": `kick-${p.id}`,
          onclick: () => act("kick_player", { player_id: p.id }) }, `Remove ${p.name}`)
        : null)));
}

function lobbyScreen(room) {
  const host = room.host_id === state.me;
  const link = `${location.origin}/?room=${room.room_code}`;
  const out = [h("section", { class: "panel", "aria-labelledby": "lobby-h" },
    h("h2", { id: "lobby-h" }, room.paused ? "Game paused" : "Lobby"),
    room.paused ? h("p", {}, "Fewer than 3 players are connected. Scores are kept; the host can resume once 3 or more are here.") : null,
    h("div", { class: "invite" },
      h("label", { for: "invite-link" }, "Invite link"),
      h("div", { class: "row" },
        h("input", { id: "invite-link", readonly: true, value: link, onfocus: (e) => e.target.select() }),
        h("button", { "data-key": "copy", onclick: async () => {
          try {
            await navigator.clipboard.writeText(link);
            notice("Invite link copied.");
          } catch {
            $("invite-link").select();
            notice("Copy the selected link with your keyboard or menu.");
          }
        } }, "Copy link"))),
    playerList(room, { kick: host }),
    host
      ? h("button", { class: "primary", "data-key": "start", onclick: () => act("start_game") }, "Start game")
      : h("p", { class: "wait" }, `Waiting for the host to start (${room.players.length} of at least 3 players here).`))];
  const kept = state.screen === "lobby" ? $("settings-form") : null;
  if (host && !room.paused && kept) {
    out.push(kept); // the same form: what the host is typing survives other players' comings
  } else if (host && !room.paused) {
    out.push(h("form", { class: "panel", "aria-labelledby": "settings-h", id: "settings-form",
      onsubmit: async (e) => {
        e.preventDefault();
        const ack = await act("update_settings", { settings: readSettings(e.currentTarget) });
        if (ack.ok) notice("Settings saved.");
      } },
    h("details", {}, h("summary", { id: "settings-h", "data-key": "settings-summary" }, "Room settings"),
      h("div", { class: "grid" }, settingsFields(room.settings)),
      h("button", { type: "submit", "data-key": "save-settings" }, "Save settings"))));
  } else {
    const s = room.settings;
    out.push(h("p", { class: "muted" }, `First to ${s.score_limit} points. ` +
      (s.submit_seconds ? `${s.submit_seconds} s to submit. ` : "No submit timer. ")));
  }
  return out;
}

function timerEl() {
  return h("p", { id: "timer", class: "timer", role: "timer", "aria-live": "off", hidden: deadline === null });
}

function blackCard(room, whites = []) {
  return h("div", { class: "card black", "aria-label": "Black card" },
    h("p", {}, sentence(room.black_card.text, whites)),
    room.black_card.pick > 1 ? h("p", { class: "pick" }, `Pick ${room.black_card.pick}`) : null);
}

function handScreen(room) {
  const me = room.players.find((p) => p.id === state.me);
  const pick = room.black_card.pick;
  const cards = state.hand?.round === room.round ? state.hand.cards : state.hand?.cards ?? [];
  const byId = new Map(cards.map((c) => [c.id, c.text]));
  if (me?.submitted) {
    return [h("p", { class: "wait", role: "status" }, "Submitted. Waiting for the other players…"),
      playerList(room)];
  }
  const toggle = (id) => {
    const at = state.selected.indexOf(id);
    if (at >= 0) state.selected.splice(at, 1);
    else if (pick === 1) state.selected = [id];
    else if (state.selected.length < pick) state.selected.push(id);
    else notice(`You already chose ${pick} cards. Unselect one first.`);
    render();
  };
  return [
    h("p", { class: "hint" }, pick > 1 ? `Choose ${pick} cards in the order they fill the blanks.` : "Choose your funniest card."),
    h("div", { class: "hand", role: "group", "aria-label": "Your hand" }, cards.map((c) => {
      const order = state.selected.indexOf(c.id);
      // The order badge sits beside the button, so the button's name is the card's text alone.
      return h("div", { class: "slot" },
        h("button", { class: "card white", "aria-pressed": String(order >= 0),
          "data-key": `card-${c.id}`, onclick: () => toggle(c.id) }, c.text),
        order >= 0 && pick > 1 ? h("span", { class: "order", "aria-hidden": "true" }, String(order + 1)) : null);
    })),
    h("div", { class: "actions" },
      h("p", { class: "preview" }, state.selected.length ? plainSentence(room.black_card.text, state.selected.map((id) => byId.get(id))) : ""),
      h("button", { class: "primary", "data-key": "submit", disabled: state.selected.length !== pick,
        onclick: async (e) => {
          e.currentTarget.disabled = true;
          const ack = await act("submit_cards", { card_ids: state.selected });
          if (ack.ok) state.selected = [];
          render();
        } }, "Submit")),
  ];
}

function roundScreen(room) {
  const czar = room.players.find((p) => p.is_czar);
  const amCzar = czar?.id === state.me;
  const out = [h("div", { class: "round-head" },
    h("h2", {}, `Round ${room.round}`), timerEl(),
    h("p", { class: "muted" }, amCzar ? "You are the czar this round." : `${czar?.name ?? "?"} is the czar.`)),
  blackCard(room)];
  if (room.phase === "submitting") {
    if (amCzar) out.push(h("p", { class: "wait", role: "status" }, "Players are choosing their cards…"), playerList(room));
    else out.push(...handScreen(room));
  } else {
    const subs = room.submissions;
    out.push(h("p", { class: "hint" }, amCzar ? "Choose the funniest, then confirm." : `${czar?.name ?? "The czar"} is choosing the winner…`));
    if (amCzar) {
      out.push(h("div", { class: "subs", role: "group", "aria-label": "Submissions" }, subs.map((s) =>
        h("button", { class: "card white sub", "aria-pressed": String(state.chosen === s.submission_id),
          "data-key": `sub-${s.submission_id}`, onclick: () => {
            state.chosen = s.submission_id;
            render();
          } }, plainSentence(room.black_card.text, s.cards)))),
      h("div", { class: "actions" },
        h("p", { class: "preview" }, state.chosen ? "Confirm your choice:" : ""),
        h("button", { class: "primary", "data-key": "pick", disabled: !state.chosen, onclick: async (e) => {
          e.currentTarget.disabled = true;
          await act("pick_winner", { submission_id: state.chosen });
        } }, "Pick winner")));
    } else {
      out.push(h("ul", { class: "subs", "aria-label": "Submissions" }, subs.map((s) =>
        h("li", { class: "card white sub" }, plainSentence(room.black_card.text, s.cards)))));
    }
  }
  out.push(scoreboard(room));
  return out;
}

function scoreboard(room) {
  const sorted = [...room.players].sort((a, b) => b.score - a.score);
  return h("section", { class: "panel scores", "aria-labelledby": "scores-h" },
    h("h2", { id: "scores-h" }, `Scores (first to ${room.settings.score_limit})`),
    h("ol", {}, sorted.map((p) => h("li", {}, h("span", {}, p.name, p.id === state.me ? " (you)" : ""), h("span", {}, String(p.score))))));
}

function gameOverScreen(room) {
  const winner = room.players.find((p) => p.id === room.winner_id);
  const name = state.gameOver?.winner.name ?? winner?.name ?? "?";
  return [h("section", { class: "panel", "aria-labelledby": "over-h" },
    h("h2", { id: "over-h" }, "Game over"),
    h("p", { class: "big" }, `${name} wins!`),
    room.host_id === state.me
      ? h("button", { class: "primary", "data-key": "again", onclick: () => act("start_game") }, "Play again")
      : h("p", { class: "wait" }, "Waiting for the host to start a new game…")),
  scoreboard(room)];
}

function screenFor(room) {
  if (!room) return "home";
  return room.phase === "lobby" ? "lobby" : room.phase === "game_over" ? "over" : "round";
}

function render() {
  if (deferWhilePressed(render)) return;
  const room = state.room;
  const screen = screenFor(room);
  const badge = $("room-badge");
  badge.hidden = !room;
  badge.textContent = room ? `Room ${room.room_code}` : "";
  $("leave").hidden = !room;
  if (screen === "home") {
    // The home forms are built once: typing must survive re-renders.
    if (state.screen !== "home") {
      swap($("screen"), homeScreen());
      document.title = "Punchline";
    }
  } else if (screen === "lobby") {
    swap($("screen"), lobbyScreen(room));
    document.title = `Lobby ${room.room_code} · Punchline`;
  } else if (screen === "round") {
    swap($("screen"), roundScreen(room));
    document.title = `Round ${room.round} · Punchline`;
  } else {
    swap($("screen"), gameOverScreen(room));
    document.title = "Game over · Punchline";
  }
  state.screen = screen;
  tick();
}

function renderReveal() {
  // Above the hand: a height change mid-press would move the card under the pointer.
  if (deferWhilePressed(renderReveal)) return;
  const box = $("reveal");
  const r = state.reveal;
  box.hidden = !r;
  if (!r) return box.replaceChildren();
  const text = plainSentence(r.black, r.whites);
  let media;
  if (r.url) {
    const existing = box.querySelector("video");
    if (existing && existing.dataset.round === String(r.round) && !existing.error) {
      return; // playing: leave it be
    }
    const captions = `WEBVTT\n\n00:00.000 --> 59:59.000\n${text}\n`;
    // play() rather than the autoplay attribute: Chromium pauses a muted *autoplaying* video
    // while it is scrolled out of view, and a player choosing cards below it may be there.
    media = h("video", { src: r.url, controls: true, muted: true, playsinline: true,
      loop: true, preload: "auto", "data-round": r.round, "aria-label": `Video: ${text}` },
    h("track", { kind: "captions", srclang: "en", label: "English",
      src: `data:text/vtt;charset=utf-8,${encodeURIComponent(captions)}` }));
    media.muted = true; // playing without a click needs it; the controls unmute
    const video = media;
    video.addEventListener("canplay", () => video.play().catch(() => {
      // refused (a browser's policy): the controls are there to start it
    }), { once: true });
    video.addEventListener("error", () => caughtUpVideoFailed(r), { once: true });
  } else if (r.failed) {
    media = h("p", { class: "video-msg error" }, "The video could not be made this time.");
  } else {
    media = h("p", { class: "video-msg", role: "status" }, "Rendering the video…");
  }
  box.replaceChildren(
    h("div", { class: "reveal-head" },
      h("h2", {}, `${r.winner} wins round ${r.round}`),
      h("button", { class: "small", "aria-label": "Close the winner", onclick: () => {
        state.closedReveal = r.round;
        state.reveal = null;
        renderReveal();
      } }, "Close")),
    h("p", { class: "sentence" }, sentence(r.black, r.whites)),
    media);
}

function tick() {
  const el = $("timer");
  if (!el) return;
  if (deadline === null) {
    el.hidden = true;
    return;
  }
  const left = Math.max(0, Math.ceil((deadline - performance.now()) / 1000));
  el.hidden = false;
  el.textContent = `${left} s left`;
  el.classList.toggle("low", left <= 10);
}

// The deck list arrives after the first render: the forms' deck choices are filled in then.
async function loadDecks() {
  try {
    const res = await fetch("/api/decks");
    if (!res.ok) return;
    state.decks = (await res.json()).decks;
  } catch {
    return; // the default deck is offered without counts
  }
  for (const old of document.querySelectorAll("#screen fieldset.decks")) {
    const chosen = [...old.querySelectorAll("input:checked")].map((i) => i.value);
    old.replaceWith(deckList(chosen));
  }
}

function start() {
  loadDecks();
  const seat = loadSeat();
  if (seat) banner(true); // taking the seat back: room_state clears the banner
  else render();
  net = connect(handlers);
  $("leave").addEventListener("click", async () => {
    if ((await act("leave_room")).ok) {
      history.replaceState(null, "", "/");
      leaveToHome(null);
    }
  });
  net.socket.io.on("reconnect_attempt", () => state.room && banner(true));
  setInterval(tick, 250);
}

start();
