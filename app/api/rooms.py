"""REST: the public state of a room."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException

from app.game.registry import RoomRegistry, get_registry
from app.sockets.payloads import RoomStateOut, room_state

router = APIRouter(prefix="/api/rooms", tags=["rooms"])


@router.get("/{code}", response_model=RoomStateOut)
async def get_room(
    code: str, registry: Annotated[RoomRegistry, Depends(get_registry)]
) -> RoomStateOut:
    # async: runs on the event loop, like the Socket.IO handlers that change rooms.
    room = registry.find(code)
    if room is None:
        raise HTTPException(404, detail={"code": "room_not_found", "message": "no such room"})
    return room_state(room.public_state())
