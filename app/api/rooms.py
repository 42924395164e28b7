"""REST: the public state of a room."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from app.api.deps import limit_room_lookups
from app.core.errors import ApiError, responses
from app.game.registry import RoomRegistry, get_registry
from app.game.views import RoomView

router = APIRouter(prefix="/api/rooms", tags=["rooms"])


@router.get("/{code}", response_model=RoomView, responses=responses(404, 429),
            dependencies=[Depends(limit_room_lookups)])
async def get_room(
    code: str, registry: Annotated[RoomRegistry, Depends(get_registry)]
) -> RoomView:
    # async: runs on the event loop, like the Socket.IO handlers that change rooms.
    room = registry.find(code)
    if room is None:
        raise ApiError(404, "room_not_found", "no such room")
    return room.public_state()
