"""Look up the cached video of a card combination."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from app.api.cards import BlackCard, WhiteCards
from app.api.deps import CacheDep
from app.core.errors import ApiError, responses

router = APIRouter(prefix="/api/videos", tags=["videos"])


@router.get("", responses=responses(404, 422))
async def lookup_video(cache: CacheDep, black: BlackCard, white: WhiteCards) -> dict[str, Any]:
    """`GET /api/videos?black=...&white=...&white=...` (white cards in play order)."""
    try:
        entry = await cache.aget_entry(black, white)
    except (TypeError, ValueError) as exc:
        raise ApiError(422, "invalid_cards", str(exc)) from exc
    if entry is None:
        raise ApiError(404, "video_not_found", "no video cached for this combination")
    return {"key": cache.key_for(black, white), **entry.to_dict()}
