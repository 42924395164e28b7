"""A room as plain data (JSON-ready dicts, lists, strings and numbers), and back.

The room store (app/state) keeps rooms in this form, so any instance can load a room, apply one
transition and save it. Cards are saved by id and looked up in the deck library on load: every
instance loads the same deck files. ``FORMAT`` is bumped when the shape changes; a snapshot of
another format is refused (``SnapshotError``) rather than half-read.

Round deadlines are clock values: the state layer gives rooms the wall clock (``time.time``), so
a deadline armed on one instance means the same moment on another.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from typing import Any, cast

from app.game.cards import BlackCard, Pile, WhiteCard
from app.game.decks import CardPool, DeckLibrary
from app.game.errors import GameError
from app.game.players import Player
from app.game.room import Room
from app.game.round import Round, RoundPhase, Submission
from app.game.settings import RoomSettings

FORMAT = 1

Data = dict[str, Any]


class SnapshotError(GameError):
    code = "internal"


def room_to_data(room: Room) -> Data:
    r = room.round
    return {
        "format": FORMAT,
        "code": room.code,
        "settings": _settings_to_data(room.settings),
        "players": [
            {"id": p.id, "name": p.name, "score": p.score, "connected": p.connected,
             "hand": [c.id for c in p.hand]}
            for p in room.players
        ],
        "host": room.host_id,
        "status": room._status,
        "paused": room._paused,
        "czar_seat": room._czar_seat,
        "round_number": room.round_number,
        "games": room.games,
        "winner": room.winner_id,
        "white": _pile_to_data(room._white),
        "black": _pile_to_data(room._black),
        "round": None if r is None else {
            "number": r.number,
            "czar": r.czar_id,
            "black": r.black.id,
            "deadline": r.deadline,
            "phase": r.phase.value,
            "participants": sorted(r.participants),
            "submissions": [_submission_to_data(s) for s in r.submissions.values()],
            "revealed": [s.player_id for s in r.revealed],
            "extra": {pid: [c.id for c in cards] for pid, cards in r.extra_drawn.items()},
        },
    }


def room_from_data(data: Mapping[str, Any], library: DeckLibrary, *,
                   rng: random.Random | None = None,
                   clock: Callable[[], float]) -> Room:
    """The room ``data`` describes. Raises ``SnapshotError`` for another format or a card that no
    loaded deck has (a deck file was removed between restarts)."""
    if data.get("format") != FORMAT:
        raise SnapshotError(f"room snapshot format {data.get('format')!r} is not {FORMAT}")
    try:
        settings = _settings_from_data(data["settings"])
        pool = library.cards(settings.deck_ids)
        room = Room(str(data["code"]), settings, [], rng=rng, clock=clock)
        room._all_white = tuple(pool.white.values())
        room._all_black = tuple(pool.black.values())
        room._white = Pile.restore(_whites(pool, data["white"]["draw"]),
                                   _whites(pool, data["white"]["discard"]),
                                   int(data["white"]["reshuffles"]), room._rng)
        room._black = Pile.restore(_blacks(pool, data["black"]["draw"]),
                                   _blacks(pool, data["black"]["discard"]),
                                   int(data["black"]["reshuffles"]), room._rng)
        room.players = [
            Player(id=p["id"], name=p["name"], score=int(p["score"]),
                   hand=_whites(pool, p["hand"]), connected=bool(p["connected"]))
            for p in data["players"]
        ]
        room.host_id = data["host"]
        room._status = data["status"]
        room._paused = bool(data["paused"])
        room._czar_seat = int(data["czar_seat"])
        room.round_number = int(data["round_number"])
        room.games = int(data["games"])
        room.winner_id = data["winner"]
        room.round = None if data["round"] is None else _round_from_data(data["round"], pool)
    except (KeyError, TypeError, ValueError) as exc:
        raise SnapshotError(f"room snapshot is malformed: {exc!r}") from exc
    return room


def _settings_to_data(s: RoomSettings) -> Data:
    return {"score_limit": s.score_limit, "max_players": s.max_players, "hand_size": s.hand_size,
            "submit_seconds": s.submit_seconds, "judge_seconds": s.judge_seconds,
            "deck_ids": list(s.deck_ids), "public_gallery": s.public_gallery}


def _settings_from_data(d: Mapping[str, Any]) -> RoomSettings:
    return RoomSettings(**{**d, "deck_ids": tuple(d["deck_ids"])})


def _pile_to_data(pile: Pile[Any]) -> Data:
    return {"draw": [c.id for c in pile.draw_order], "discard": [c.id for c in pile.discards],
            "reshuffles": pile.reshuffles}


def _submission_to_data(s: Submission) -> Data:
    return {"player": s.player_id, "name": s.player_name, "cards": [c.id for c in s.cards],
            "id": s.submission_id}


def _round_from_data(d: Mapping[str, Any], pool: CardPool) -> Round:
    black = _card(pool.black, d["black"])
    subs = {
        s["player"]: Submission(s["player"], s["name"], tuple(_whites(pool, s["cards"])), s["id"])
        for s in d["submissions"]
    }
    deadline = d["deadline"]
    return Round(
        number=int(d["number"]),
        czar_id=d["czar"],
        black=cast(BlackCard, black),
        deadline=float(deadline) if deadline is not None else None,
        phase=RoundPhase(d["phase"]),
        participants=set(d["participants"]),
        submissions=subs,
        revealed=[subs[pid] for pid in d["revealed"]],
        extra_drawn={pid: _whites(pool, ids) for pid, ids in d["extra"].items()},
    )


def _card(cards: Mapping[str, Any], card_id: str) -> Any:
    card = cards.get(card_id)
    if card is None:
        raise SnapshotError(f"card {card_id!r} is in no loaded deck")
    return card


def _whites(pool: CardPool, ids: list[str]) -> list[WhiteCard]:
    return [cast(WhiteCard, _card(pool.white, i)) for i in ids]


def _blacks(pool: CardPool, ids: list[str]) -> list[BlackCard]:
    return [cast(BlackCard, _card(pool.black, i)) for i in ids]
