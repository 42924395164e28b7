"""REST: the public state of a room."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from app.api.deps import limit_room_lookups
from app.core.errors import ApiError, responses
from app.game.codes import normalize_code
from app.game.views import RoomView
from app.state.book import ServiceDegraded
from app.state.record import RoomRecord
from app.state.wiring import GameState, game_state

router = APIRouter(prefix="/api/rooms", tags=["rooms"])


@router.get("/{code}", response_model=RoomView, responses=responses(404, 429, 503),
            dependencies=[Depends(limit_room_lookups)])
async def get_room(
    code: str, state: Annotated[GameState, Depends(game_state)]
) -> RoomView:
    record = await find_room(state, code)
    return record.room.public_state()


async def find_room(state: GameState, raw_code: str) -> RoomRecord:
    """The room's record from the store, or 404 (503 while the store is unreachable)."""
    code = normalize_code(raw_code)
    try:
        record = await state.book.peek(code) if code is not None else None
    except ServiceDegraded as exc:
        raise ApiError(503, exc.code, exc.message) from None
    if record is None:
        raise ApiError(404, "room_not_found", "no such room")
    return record
