"""Cache statistics, and admin operations on single entries."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from app.api.cards import BlackCard, WhiteCards
from app.api.deps import AdminDep, CacheDep
from app.core.errors import ApiError, responses

router = APIRouter(prefix="/api/cache", tags=["cache"])


@router.get("/stats")
async def cache_stats(cache: CacheDep) -> dict[str, Any]:
    return await cache.aget_stats()


@router.delete("/entry", responses=responses(401, 403, 422, 429))
async def delete_entry(_: AdminDep, cache: CacheDep, black: BlackCard,
                       white: WhiteCards) -> dict[str, Any]:
    """Remove one combination's cached video (admin token required)."""
    try:
        removed = await cache.adelete(black, white)
    except (TypeError, ValueError) as exc:
        raise ApiError(422, "invalid_cards", str(exc)) from exc
    return {"deleted": removed, "key": cache.key_for(black, white)}
