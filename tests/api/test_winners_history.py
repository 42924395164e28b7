"""`GET /api/rooms/{code}/history`: a room's finished rounds, won and voided."""

from __future__ import annotations

import httpx

from app.game import events as ev
from app.game.registry import RoomRegistry
from app.game.room import HISTORY_LIMIT, Room
from app.game.settings import RoomSettings
from app.video.combos import combination_of
from app.video.storage import sha_of_key
from app.video.winners import sentence_of
from tests.game.support import czar, make_room, non_czars, one, play_all, room_settings


def _win_round(room: Room) -> ev.RoundWon:
    events = play_all(room)
    revealed = one(events, ev.SubmissionsRevealed)
    return one(room.pick_winner(czar(room), revealed.submissions[0].submission_id), ev.RoundWon)


def test_the_room_remembers_won_and_voided_rounds_across_games() -> None:
    room = make_room(3, settings=room_settings(score_limit=1))
    room.start_game(room.players[0].id)
    won = _win_round(room)  # score limit 1: game over
    assert room.history == ((1, won),)
    room.start_game(room.players[0].id)
    leaver = non_czars(room)[0]
    room.remove(leaver)  # two players left: the round is voided and the game paused
    assert [(game, type(o).__name__) for game, o in room.history] == [
        (1, "RoundWon"), (2, "RoundVoided")]
    voided = room.history[1][1]
    assert isinstance(voided, ev.RoundVoided) and voided.reason == "not_enough_players"


def test_history_is_bounded() -> None:
    room = make_room(4, settings=room_settings(score_limit=50))
    room.start_game(room.players[0].id)
    for _ in range(HISTORY_LIMIT + 5):
        if room.round is None or len(room.hand(room.players[0].id)) < 3:
            break
        _win_round(room)
    assert len(room.history) <= HISTORY_LIMIT


async def test_history_route(client: httpx.AsyncClient) -> None:
    registry: RoomRegistry = client.app.state.registry  # type: ignore[attr-defined]
    room, host, _ = registry.create_room("Ann", RoomSettings(public_gallery=False))
    room.add_player("Bob")
    room.add_player("Cy")
    empty = await client.get(f"/api/rooms/{room.code.lower()}/history")
    assert empty.status_code == 200 and empty.json() == {"code": room.code, "rounds": []}
    room.start_game(host.id)
    won = _win_round(room)
    room.remove(non_czars(room)[0])
    body = (await client.get(f"/api/rooms/{room.code}/history")).json()
    sha = sha_of_key(combination_of(won.black_card_text, list(won.white_card_texts)).key)
    first, second = body["rounds"]
    assert first == {
        "game": 1, "round": 1, "outcome": "won", "reason": None,
        "black_card": won.black_card_text, "white_cards": list(won.white_card_texts),
        "sentence": sentence_of(combination_of(won.black_card_text,
                                               list(won.white_card_texts))),
        "winner_name": won.winner_name, "video_id": sha, "video_url": f"/videos/{sha}.mp4",
        "share_url": None}  # the room is out of the gallery
    assert second["outcome"] == "voided" and second["reason"] == "not_enough_players"
    assert second["round"] == 2 and second["game"] == 1
    missing = await client.get("/api/rooms/ZZZZZ/history")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "room_not_found"
