"""The video layer's part of the FastAPI lifespan.

    async with video_lifespan():
        yield
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from app.video.pregen import Pregenerator
from app.video.service import VideoService, get_video_service


@asynccontextmanager
async def video_lifespan(service: VideoService | None = None) -> AsyncIterator[VideoService]:
    """Start the render pool and pre-generation; stop both and close providers on exit.

    Enter it after the cache has started (`await video_cache.astart()`).
    """
    service = service or get_video_service()
    await service.start()
    pregen = Pregenerator(service) if service.settings.pregen_enabled else None
    if pregen is not None:
        pregen.start()
    try:
        yield service
    finally:
        if pregen is not None:
            await pregen.stop()
        await service.aclose()
