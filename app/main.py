"""The ASGI application: FastAPI for HTTP, wrapped by python-socketio.

Run with `python -m uvicorn app.main:socket_app`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import socketio
from fastapi import FastAPI

from app.api import cache, decks, health, metrics, rooms, videos
from app.core.config import get_settings
from app.core.logging import configure_logging
from app.services.video_cache import video_cache
from app.sockets import register_socket_handlers
from app.video import routes as video_routes
from app.video.lifespan import video_lifespan

settings = get_settings()
configure_logging(settings.log_level)

sio = socketio.AsyncServer(async_mode="asgi", cors_allowed_origins="*")
# Loads every deck now: a bad deck file stops the start-up with a clear error.
game_server = register_socket_handlers(sio)


@asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    await video_cache.astart()
    try:
        async with video_lifespan():
            await game_server.start()
            try:
                yield
            finally:
                await game_server.stop()
    finally:
        await video_cache.aclose()


app = FastAPI(title="Punchline", version="0.1.0", lifespan=lifespan)
for module in (health, cache, videos, rooms, decks, metrics, video_routes):
    app.include_router(module.router)

# Don't pass on_startup/on_shutdown here: they would replace FastAPI's lifespan.
socket_app = socketio.ASGIApp(sio, other_asgi_app=app)
