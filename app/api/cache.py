"""Cache statistics, and admin operations on single entries."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query

from app.api.deps import AdminDep
from app.services.video_cache import video_cache

router = APIRouter(prefix="/api/cache", tags=["cache"])

WhiteCards = Annotated[list[str], Query(min_length=1, max_length=10, alias="white")]
BlackCard = Annotated[str, Query(min_length=1, max_length=1000, alias="black")]


@router.get("/stats")
async def cache_stats() -> dict[str, Any]:
    return await video_cache.aget_stats()


@router.delete("/entry")
async def delete_entry(_: AdminDep, black: BlackCard, white: WhiteCards) -> dict[str, Any]:
    """Remove one combination's cached video (admin token required)."""
    try:
        removed = await video_cache.adelete(black, white)
    except (TypeError, ValueError) as exc:
        raise HTTPException(422, str(exc)) from exc
    return {"deleted": removed, "key": video_cache.key_for(black, white)}
