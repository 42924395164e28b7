"""A room: its players, its piles and its rounds, as a state machine without I/O.

Every transition returns the events it caused. Time comes from the injected ``clock``; nothing
happens by itself, the caller calls ``tick()`` now and then to apply round timers. Rules that
keep a game from getting stuck are described in docs/game.md.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from typing import Literal

from app.game import events as ev
from app.game.cards import BlackCard, Pile, WhiteCard
from app.game.decks import Deck
from app.game.errors import (
    AlreadySubmitted,
    InvalidCards,
    InvalidSettings,
    NameTaken,
    NotAllowed,
    NotCzar,
    NotEnoughCards,
    NotEnoughPlayers,
    NotHost,
    PlayerNotFound,
    RoomFull,
    UnknownSubmission,
    WrongPhase,
)
from app.game.players import Player, clean_name, name_key
from app.game.round import Round, RoundPhase, Submission
from app.game.settings import MIN_PLAYERS, RoomSettings
from app.game.views import RoomView, SubmissionView, view_of

Phase = Literal["lobby", "submitting", "judging", "game_over"]
Events = list[ev.Event]

# White cards a game needs per seated player: a full hand plus the largest extra draw.
WHITE_PER_PLAYER_MARGIN = 3


def _submission_views(r: Round) -> tuple[SubmissionView, ...]:
    """The round's revealed submissions as everyone sees them: shuffled order, no authors."""
    return tuple(
        SubmissionView(s.submission_id, tuple(c.text for c in s.cards)) for s in r.revealed
    )


class Room:
    def __init__(
        self,
        code: str,
        settings: RoomSettings,
        decks: Sequence[Deck],
        *,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.code = code
        self.settings = settings
        self._rng = rng if rng is not None else random.SystemRandom()
        self._clock = clock
        whites = {c.id: c for deck in decks for c in deck.white}
        blacks = {c.id: c for deck in decks for c in deck.black}
        self._all_white: tuple[WhiteCard, ...] = tuple(whites.values())
        self._all_black: tuple[BlackCard, ...] = tuple(blacks.values())
        self._white: Pile[WhiteCard] = Pile(self._all_white, self._rng)
        self._black: Pile[BlackCard] = Pile(self._all_black, self._rng)
        self.players: list[Player] = []  # seat order: join order
        self.host_id: str | None = None
        self.round: Round | None = None
        self.round_number = 0
        self.winner_id: str | None = None
        self._status: Literal["lobby", "playing", "game_over"] = "lobby"
        self._paused = False  # in the lobby with the scores of an unfinished game
        self._czar_seat = -1  # seat of the last czar; the next is the next connected seat
        self.games = 0  # games started (or restarted) in this room

    # --- queries ------------------------------------------------------------------------------
    @property
    def phase(self) -> Phase:
        if self.round is not None:
            return "submitting" if self.round.phase is RoundPhase.SUBMITTING else "judging"
        return "game_over" if self._status == "game_over" else "lobby"

    @property
    def paused(self) -> bool:
        return self._paused

    @property
    def is_empty(self) -> bool:
        return not self.players

    @property
    def white_card_count(self) -> int:
        return len(self._all_white)

    @property
    def black_card_count(self) -> int:
        return len(self._all_black)

    def player(self, player_id: str) -> Player:
        for p in self.players:
            if p.id == player_id:
                return p
        raise PlayerNotFound(f"no player {player_id!r} in room {self.code}")

    def has_player(self, player_id: str) -> bool:
        return any(p.id == player_id for p in self.players)

    def hand(self, player_id: str) -> list[WhiteCard]:
        return list(self.player(player_id).hand)

    def scores(self) -> dict[str, int]:
        return {p.id: p.score for p in self.players}

    def seconds_left(self) -> float | None:
        if self.round is None or self.round.deadline is None:
            return None
        return max(0.0, self.round.deadline - self._clock())

    def revealed(self) -> tuple[SubmissionView, ...]:
        """The submissions the czar judges: shuffled, anonymous; empty unless judging."""
        r = self.round
        if r is None or r.phase is not RoundPhase.JUDGING:
            return ()
        return _submission_views(r)

    def public_state(self) -> RoomView:
        """What every player (and the REST API) may see: no hands, no authors of submissions."""
        return view_of(self)

    # --- membership ---------------------------------------------------------------------------

    def add_player(self, raw_name: str) -> tuple[Player, Events]:
        name = clean_name(raw_name)
        key = name_key(name)
        if any(name_key(p.name) == key for p in self.players):
            raise NameTaken(f"the name {name!r} is taken or looks like a name in this room")
        if len(self.players) >= self.settings.max_players:
            raise RoomFull(f"room {self.code} is full ({self.settings.max_players} players)")
        player = Player(id=self._new_id("p"), name=name)
        self.players.append(player)
        events: Events = [ev.PlayerJoined(player.id, player.name)]
        if self.host_id is None:
            self.host_id = player.id
        if self._status == "playing":
            events += self._refill(player)
            self._enlist(player, events)  # a newcomer may play in the current round
        return player, events

    def remove(self, player_id: str, reason: ev.LeaveReason = "left") -> Events:
        """A player leaves for good (left, kicked, or dropped past the grace period)."""
        player = self.player(player_id)
        seat = self.players.index(player)
        self.players.remove(player)
        if seat <= self._czar_seat:
            self._czar_seat -= 1  # the next czar is still the one seated after the last
        self._white.discard(player.hand)
        player.hand.clear()
        events: Events = [ev.PlayerLeft(player.id, player.name, reason)]
        if self.host_id == player.id:
            self.host_id = self.players[0].id if self.players else None
            if self.host_id is not None:
                events.append(ev.HostChanged(self.host_id))
        r = self.round
        if self._status == "playing" and len(self.players) < MIN_PLAYERS:
            events += self._pause()
        elif r is not None and r.czar_id == player.id:
            events += self._void("czar_left")
            events += self._next_round()
        elif r is not None:
            events += self._withdraw(r, player, to_hand=False)
        return events

    def kick(self, by: str, target: str) -> Events:
        self._require_host(by)
        if by == target:
            raise NotAllowed("the host cannot kick themselves; leave instead")
        self.player(target)
        return self.remove(target, "kicked")

    def mark_disconnected(self, player_id: str) -> Events:
        """A dropped connection: the seat, hand and score are kept until ``remove``."""
        player = self.player(player_id)
        if not player.connected:
            return []
        player.connected = False
        events: Events = [ev.PlayerDisconnected(player.id)]
        r = self.round
        if r is not None and r.phase is RoundPhase.SUBMITTING and r.czar_id != player.id:
            events += self._withdraw(r, player, to_hand=True)
        return events

    def mark_reconnected(self, player_id: str) -> Events:
        player = self.player(player_id)
        if player.connected:
            return []
        player.connected = True
        events: Events = [ev.PlayerReconnected(player.id)]
        self._enlist(player, events)
        return events

    # --- the game -----------------------------------------------------------------------------

    def start_game(self, by: str) -> Events:
        self._require_host(by)
        if self._status == "playing":
            raise WrongPhase("the game is already running")
        if len(self.players) < MIN_PLAYERS:
            raise NotEnoughPlayers(f"at least {MIN_PLAYERS} players are needed to start")
        need = len(self.players) * (self.settings.hand_size + WHITE_PER_PLAYER_MARGIN)
        if not self._all_black or len(self._all_white) < need:
            raise NotEnoughCards(
                f"the chosen decks have {len(self._all_black)} black and "
                f"{len(self._all_white)} white cards; {len(self.players)} players need "
                f"at least 1 black and {need} white cards"
            )
        resumed = self._paused
        if not resumed:
            self._new_game()
        self._status = "playing"
        self._paused = False
        self.winner_id = None
        return [ev.GameStarted(resumed=resumed), *self._next_round()]

    def update_settings(self, by: str, settings: RoomSettings, decks: Sequence[Deck]) -> Events:
        """The host changes the settings in the lobby, before a game (not while one is paused:
        hands and scores were dealt under the old ones). ``decks`` are ``settings.deck_ids``."""
        self._require_host(by)
        if self._status != "lobby" or self._paused:
            raise WrongPhase("settings can only change in the lobby, before the game starts")
        if settings.max_players < len(self.players):
            raise InvalidSettings(
                f"max_players {settings.max_players} is below the {len(self.players)} players "
                "already in the room"
            )
        whites = {c.id: c for deck in decks for c in deck.white}
        blacks = {c.id: c for deck in decks for c in deck.black}
        need = MIN_PLAYERS * (settings.hand_size + WHITE_PER_PLAYER_MARGIN)
        if not blacks or len(whites) < need:
            raise InvalidSettings(
                f"the chosen decks are too small: need black cards and at least {need} white cards"
            )
        self.settings = settings
        self._all_white = tuple(whites.values())
        self._all_black = tuple(blacks.values())
        self._white.reset(self._all_white)
        self._black.reset(self._all_black)
        return []

    def submit(self, player_id: str, card_ids: Sequence[str]) -> Events:
        r = self._round_in(RoundPhase.SUBMITTING)
        player = self.player(player_id)
        if player.id == r.czar_id:
            raise NotAllowed("the czar does not submit cards")
        if player.id in r.submissions:
            raise AlreadySubmitted("you have already submitted cards this round")
        if player.id not in r.participants:
            raise NotAllowed("you are not playing in this round")
        ids = list(card_ids)
        if len(ids) != r.black.pick:
            raise InvalidCards(f"this black card needs exactly {r.black.pick} white card(s)")
        if len(set(ids)) != len(ids):
            raise InvalidCards("the same card was given twice")
        by_id = {c.id: c for c in player.hand}
        if any(i not in by_id for i in ids):
            raise InvalidCards("you can only play cards from your own hand")
        cards = tuple(by_id[i] for i in ids)
        player.hand[:] = [c for c in player.hand if c.id not in set(ids)]
        r.submissions[player.id] = Submission(player.id, player.name, cards)
        events: Events = [ev.CardsSubmitted(r.number, player.id)]
        if r.all_in:
            events += self._reveal(r)
        return events

    def pick_winner(self, by: str, submission_id: str) -> Events:
        r = self._round_in(RoundPhase.JUDGING)
        if by != r.czar_id:
            raise NotCzar("only the czar picks the winner")
        chosen = r.find_revealed(submission_id)
        if chosen is None:
            raise UnknownSubmission("no such submission in this round")
        # The author may have left after the reveal (their submission stays, see _withdraw):
        # the win is announced under the name they had, and scores nothing.
        winner = next((p for p in self.players if p.id == chosen.player_id), None)
        if winner is not None:
            winner.score += 1
        self._discard_round(r)
        self.round = None
        won = ev.RoundWon(
            round=r.number,
            black_card_text=r.black.text,
            white_card_texts=tuple(c.text for c in chosen.cards),
            winner_player_id=chosen.player_id,
            winner_name=chosen.player_name,
            submission_id=chosen.submission_id,
            scores=self.scores(),
            winner_left=winner is None,
            public_gallery=self.settings.public_gallery,
        )
        events: Events = [won]
        if winner is not None and winner.score >= self.settings.score_limit:
            self._status = "game_over"
            self.winner_id = winner.id
            events.append(ev.GameOver(winner.id, winner.name, self.scores()))
        else:
            events += self._next_round()
        return events

    def tick(self) -> Events:
        """Apply the round timer: reveal what was submitted, or void a round nobody can finish."""
        r = self.round
        if r is None or r.deadline is None or self._clock() < r.deadline:
            return []
        if r.phase is RoundPhase.SUBMITTING:
            if r.submissions:
                return self._reveal(r)
            return [*self._void("submit_timeout"), *self._next_round()]
        return [*self._void("judge_timeout"), *self._next_round()]

    # --- internals ----------------------------------------------------------------------------

    def _new_id(self, prefix: str) -> str:
        while True:
            candidate = f"{prefix}_{self._rng.getrandbits(64):016x}"
            if not self.has_player(candidate):
                return candidate

    def _require_host(self, by: str) -> None:
        self.player(by)
        if by != self.host_id:
            raise NotHost("only the host can do that")

    def _round_in(self, phase: RoundPhase) -> Round:
        r = self.round
        if r is None or r.phase is not phase:
            raise WrongPhase(f"this is only possible while {phase.value}, not {self.phase}")
        return r

    def _new_game(self) -> None:
        for p in self.players:
            p.score = 0
            p.hand.clear()
        self._white.reset(self._all_white)
        self._black.reset(self._all_black)
        self.round_number = 0
        self._czar_seat = -1
        self.games += 1

    def _draw_white(self, n: int, events: Events) -> list[WhiteCard]:
        before = self._white.reshuffles
        cards = self._white.draw(n)
        if self._white.reshuffles != before:
            events.append(ev.DeckReshuffled("white"))
        return cards

    def _refill(self, player: Player) -> Events:
        events: Events = []
        missing = self.settings.hand_size - len(player.hand)
        if missing > 0:
            player.hand.extend(self._draw_white(missing, events))
        return events

    def _enlist(self, player: Player, events: Events) -> None:
        """Let a connected player take part in the round being played, if it still waits."""
        r = self.round
        if (
            r is None
            or r.phase is not RoundPhase.SUBMITTING
            or not player.connected
            or player.id == r.czar_id
            or player.id in r.participants
        ):
            return
        if r.black.draw and player.id not in r.extra_drawn:
            extra = self._draw_white(r.black.draw, events)
            player.hand.extend(extra)
            r.extra_drawn[player.id] = extra
        if len(player.hand) >= r.black.pick:
            r.participants.add(player.id)

    def _withdraw(self, r: Round, player: Player, *, to_hand: bool) -> Events:
        """Take a player out of the round; reveal if everyone left has submitted.

        Once revealed, a submission stays on the table when its author leaves: taking it away
        would tell everyone who wrote it. The czar may still pick it (see ``pick_winner``)."""
        events: Events = []
        r.participants.discard(player.id)
        if r.phase is RoundPhase.JUDGING:
            return events
        sub = r.submissions.pop(player.id, None)
        if sub is not None:
            if to_hand:
                player.hand.extend(sub.cards)
            else:
                self._white.discard(sub.cards)
            events.append(ev.SubmissionWithdrawn(r.number, player.id))
        if r.all_in:
            events += self._reveal(r)
        return events

    def _reveal(self, r: Round) -> Events:
        r.phase = RoundPhase.JUDGING
        r.revealed = list(r.submissions.values())
        self._rng.shuffle(r.revealed)
        for n, sub in enumerate(r.revealed):
            # Opaque and unique in the round: random bits plus the shuffled position.
            sub.submission_id = f"s{n}_{self._rng.getrandbits(48):012x}"
        judge = self.settings.judge_seconds
        r.deadline = self._clock() + judge if judge is not None else None
        return [
            ev.SubmissionsRevealed(
                round=r.number,
                black_card_text=r.black.text,
                submissions=_submission_views(r),
            )
        ]

    def _discard_round(self, r: Round) -> None:
        for sub in r.submissions.values():
            self._white.discard(sub.cards)
        self._black.discard([r.black])

    def _void(self, reason: ev.VoidReason) -> Events:
        """End the round without a winner: played cards go back to their players' hands and the
        extra cards drawn for it are put back, so hands do not grow."""
        r = self.round
        if r is None:
            return []
        self.round = None
        seated = {p.id: p for p in self.players}
        for sub in r.submissions.values():
            owner = seated.get(sub.player_id)
            if owner is not None:
                owner.hand.extend(sub.cards)
            else:
                self._white.discard(sub.cards)
        for pid, extra in r.extra_drawn.items():
            owner = seated.get(pid)
            if owner is None:
                continue
            for card in extra:
                if len(owner.hand) > self.settings.hand_size and card in owner.hand:
                    owner.hand.remove(card)
                    self._white.discard([card])
        self._black.discard([r.black])
        voided = ev.RoundVoided(r.number, reason)
        return [voided]

    def _pause(self) -> Events:
        events = self._void("not_enough_players")
        self._status = "lobby"
        self._paused = True
        events.append(ev.GamePaused("not_enough_players", self.scores()))
        return events

    def _next_czar(self) -> Player:
        n = len(self.players)
        for step in range(1, n + 1):
            candidate = self.players[(self._czar_seat + step) % n]
            if candidate.connected:
                break
        else:
            candidate = self.players[(self._czar_seat + 1) % n]
        self._czar_seat = self.players.index(candidate)
        return candidate

    def _next_round(self) -> Events:
        if self._status != "playing" or len(self.players) < MIN_PLAYERS:
            return []
        events: Events = []
        czar = self._next_czar()
        before = self._black.reshuffles
        (black,) = self._black.draw(1)  # never empty: cards come back at every round's end
        if self._black.reshuffles != before:
            events.append(ev.DeckReshuffled("black"))
        for p in self.players:
            events += self._refill(p)
        self.round_number += 1
        submit = self.settings.submit_seconds
        self.round = Round(
            number=self.round_number,
            czar_id=czar.id,
            black=black,
            deadline=self._clock() + submit if submit is not None else None,
        )
        events.insert(
            0, ev.RoundStarted(self.round_number, czar.id, black.text, black.pick, black.draw)
        )
        for p in self.players:
            self._enlist(p, events)
        return events
