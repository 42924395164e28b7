"""Liveness and the active cache."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from app.services.video_cache import video_cache

router = APIRouter(tags=["health"])


@router.get("/health")
async def health() -> dict[str, Any]:
    core = video_cache.core
    return {"status": "ok", "cache": core.cache_type, "redis_connected": core.redis_usable,
            "degraded_since": core.breaker.degraded_since}
