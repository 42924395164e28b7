"""`GET /api/rooms/{code}/history`: a room's finished rounds, won and voided, kept by the store."""

from __future__ import annotations

from collections.abc import Sequence

import httpx

from app.game import events as ev
from app.game.registry import RoomRegistry
from app.game.room import Room
from app.game.settings import RoomSettings
from app.state.book import RoomBook
from app.state.record import RoomRecord, SeatState
from app.state.wiring import GameState
from app.video.combos import combination_of
from app.video.storage import sha_of_key
from app.video.winners import sentence_of
from tests.game.support import czar, non_czars, one, play_all


def _win_round(room: Room) -> list[ev.Event]:
    events = play_all(room)
    revealed = one(events, ev.SubmissionsRevealed)
    return [*events, *room.pick_winner(czar(room), revealed.submissions[0].submission_id)]


async def test_history_route(client: httpx.AsyncClient) -> None:
    registry: RoomRegistry = client.app.state.registry  # type: ignore[attr-defined]
    state: GameState = client.app.state.game_state  # type: ignore[attr-defined]
    book: RoomBook = state.book
    room, host, _ = registry.create_room("Ann", RoomSettings(public_gallery=False))
    record = RoomRecord(room, {host.id: SeatState("h")})
    book.new_record(record)
    assert await book.create(record)

    async def apply(change: Sequence[str]) -> list[ev.Event]:
        record, events = await book.transact(room.code, _steps[change[0]])
        return events

    def join(record: RoomRecord) -> list[ev.Event]:
        return [*record.room.add_player("Bob")[1], *record.room.add_player("Cy")[1]]

    _steps = {"join": join,
              "start": lambda r: r.room.start_game(host.id),
              "win": lambda r: _win_round(r.room),
              "leave": lambda r: r.room.remove(non_czars(r.room)[0])}
    await apply(["join"])
    empty = await client.get(f"/api/rooms/{room.code.lower()}/history")
    assert empty.status_code == 200 and empty.json() == {"code": room.code, "rounds": []}
    await apply(["start"])
    won = one(await apply(["win"]), ev.RoundWon)
    await apply(["leave"])
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
