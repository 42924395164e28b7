"""Liveness and the active cache."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from app.api.deps import CacheDep

router = APIRouter(tags=["health"])


@router.get("/health")
async def health(cache: CacheDep) -> dict[str, Any]:
    core = cache.core
    return {"status": "ok", "cache": core.cache_type, "redis_connected": core.redis_usable,
            "degraded_since": core.breaker.degraded_since}
