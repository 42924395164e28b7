"""Look up the cached video of a card combination."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query

from app.services.video_cache import video_cache

router = APIRouter(prefix="/api/videos", tags=["videos"])


@router.get("")
async def lookup_video(
    black: Annotated[str, Query(min_length=1, max_length=1000)],
    white: Annotated[list[str], Query(min_length=1, max_length=10)],
) -> dict[str, Any]:
    """`GET /api/videos?black=...&white=...&white=...` (white cards in play order)."""
    try:
        entry = await video_cache.aget_entry(black, white)
    except (TypeError, ValueError) as exc:
        raise HTTPException(422, str(exc)) from exc
    if entry is None:
        raise HTTPException(404, "no video cached for this combination")
    return {"key": video_cache.key_for(black, white), **entry.to_dict()}
