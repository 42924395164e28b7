"""The ASGI application: FastAPI for HTTP, wrapped by python-socketio.

Run with `python -m uvicorn app.main:socket_app`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import socketio
from fastapi import FastAPI

from app.api import cache, health, metrics
from app.core.config import get_settings
from app.core.logging import configure_logging
from app.services.video_cache import video_cache
from app.video import routes as video_routes
from app.video.lifespan import video_lifespan

settings = get_settings()
configure_logging(settings.log_level)


@asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    await video_cache.astart()
    try:
        async with video_lifespan():
            yield
    finally:
        await video_cache.aclose()


app = FastAPI(title="Punchline", version="0.1.0", lifespan=lifespan)
app.include_router(health.router)
app.include_router(cache.router)
app.include_router(metrics.router)
app.include_router(video_routes.router)

sio = socketio.AsyncServer(async_mode="asgi", cors_allowed_origins="*")
# Don't pass on_startup/on_shutdown here: they would replace FastAPI's lifespan.
socket_app = socketio.ASGIApp(sio, other_asgi_app=app)
