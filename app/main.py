"""The ASGI application: FastAPI for HTTP, wrapped by python-socketio.

`create_app(settings)` builds everything; importing this module reads no setting and wires
nothing. The spec's command still works: `python -m uvicorn app.main:socket_app` looks up
`socket_app`, which is built on that first look-up (`app` and `sio` likewise, from the same
build). `python -m app.main` (what `make run` uses) starts uvicorn with the settings that
uvicorn's own flags would otherwise carry: trusted proxies and a bound on request heads.

In tests, build apps in-process::

    app = create_app(Settings(_env_file=None, redis_url="memory://", ...))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app.state.socket_app)
"""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import socketio
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from app.api import admin, cache, decks, health, metrics, rooms, videos, winners
from app.api.deps import get_video_cache
from app.cache.connection import tls_options
from app.core.config import Settings, get_settings
from app.core.errors import install_error_handlers, use_error_shape_in_openapi
from app.core.headers import HeaderLimit
from app.core.heap import frozen_startup_heap
from app.core.logging import configure_logging
from app.core.ratelimit import RateLimits
from app.core.shutdown import bounded_step
from app.game.decks import load_library
from app.game.registry import RoomRegistry, get_registry
from app.services.video_cache import VideoCache, video_cache
from app.sockets import register_socket_handlers
from app.sockets.manager import client_manager, socketio_url
from app.state.wiring import GameState
from app.video import routes as video_routes
from app.video.lifespan import video_lifespan
from app.video.service import VideoService, get_video_service, set_video_service
from app.web import routes as web_routes

VERSION = "0.1.0"


def create_sio(settings: Settings) -> socketio.AsyncServer:
    """THE Socket.IO server constructor: its keyword arguments live here and only here.

    `cors_allowed_origins=None` is python-engineio's "same origin only"; a list allows exactly
    those origins (CORS_ORIGINS, never a wildcard: the setting refuses "*").
    """
    return socketio.AsyncServer(
        async_mode="asgi",
        # Redis pub/sub between instances (None with memory://: this process only).
        client_manager=client_manager(socketio_url(settings), settings.socketio_channel,
                                      tls=tls_options(settings)),
        cors_allowed_origins=list(settings.cors_origins) or None,
        cors_credentials=False,
        # The game accepts every connection and answers refusals as events (app/sockets).
        always_connect=True,
    )


def create_app(settings: Settings | None = None, *, cache_facade: VideoCache | None = None
               ) -> FastAPI:
    """The FastAPI app, with the Socket.IO wrapper on `app.state.socket_app` (serve that one).

    Nothing connects here: the lifespan connects the cache, starts the render pool and the game
    ticker, and closes them on shutdown. `cache_facade` defaults to the spec's process singleton
    `app.services.video_cache.video_cache`, configured with `settings`.
    """
    settings = settings if settings is not None else get_settings()
    configure_logging(settings.log_level, settings.log_format)
    cache_obj = cache_facade if cache_facade is not None else video_cache
    cache_obj.configure(settings)
    service = VideoService(settings, cache=cache_obj)
    set_video_service(service)  # the process's service, for code that looks it up
    # Loads every deck now: a bad deck file stops the start-up with a clear error.
    registry = RoomRegistry(load_library(settings.extra_deck_paths))
    limits = RateLimits.from_settings(settings)
    game_state = GameState(settings, registry.library)

    sio = create_sio(settings)
    game_server = register_socket_handlers(sio, registry=registry, state=game_state,
                                           video_service=service,
                                           settings=settings, rate_limits=limits,
                                           shared=lambda: cache_obj.shared)

    async def emit_to_room(event: str, data: dict[str, Any], channel: str) -> None:
        await sio.emit(event, data, room=channel)  # render workers' news, through any instance

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await cache_obj.astart()
        try:
            await limits.start()
            await game_state.connect()
            async with video_lifespan(service, emit=emit_to_room):
                await game_server.start()
                try:
                    with frozen_startup_heap():  # full GCs skip it: shorter loop stalls
                        yield
                finally:
                    async with bounded_step("game server"):
                        await game_server.stop()
        finally:
            async with bounded_step("game state"):
                await game_state.aclose()
            async with bounded_step("rate limits"):
                await limits.aclose()
            async with bounded_step("video cache"):
                await cache_obj.aclose()

    app = FastAPI(title="Punchline", version=VERSION, lifespan=lifespan)
    install_error_handlers(app)
    use_error_shape_in_openapi(app)
    if settings.cors_origins:  # same origin needs no CORS headers
        app.add_middleware(
            CORSMiddleware, allow_origins=list(settings.cors_origins), allow_credentials=False,
            allow_methods=["GET", "HEAD", "DELETE", "POST", "OPTIONS"],
            allow_headers=["Authorization", "Content-Type", "Range"],
            expose_headers=["Retry-After", "Content-Range", "Accept-Ranges", "Content-Length"])
    for module in (health, cache, videos, rooms, decks, metrics, admin):
        app.include_router(module.router)
    # Before the video routes: the poster route shares their prefix.
    app.include_router(winners.build_router(settings.video_public_prefix))
    app.include_router(video_routes.build_router(settings.video_public_prefix))
    web_routes.install(app)  # the browser client at / and /static
    app.dependency_overrides.update({
        get_settings: lambda: settings,
        get_video_cache: lambda: cache_obj,
        get_video_service: lambda: service,
        get_registry: lambda: registry,
    })
    app.state.settings = settings
    app.state.video_cache = cache_obj
    app.state.video_service = service
    app.state.registry = registry
    app.state.game_state = game_state
    app.state.rate_limits = limits
    app.state.sio = sio
    app.state.game_server = game_server
    # Don't pass on_startup/on_shutdown here: they would replace FastAPI's lifespan.
    # HeaderLimit in front of both: request heads past HTTP_MAX_HEADER_BYTES get 431.
    app.state.socket_app = HeaderLimit(socketio.ASGIApp(sio, other_asgi_app=app),
                                       settings.http_max_header_bytes)
    return app


_default: FastAPI | None = None


def __getattr__(name: str) -> Any:
    """`app.main:socket_app`, `app.main:app` and `app.main:sio`, built on first look-up."""
    global _default
    if name in {"app", "socket_app", "sio"}:
        if _default is None:
            _default = create_app()
        return _default if name == "app" else getattr(_default.state, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """uvicorn.run() options that come from settings (see `run`)."""
    return {
        # h11, not httptools: h11 refuses a request head past this size (400); httptools has
        # no bound. The cost: h11 is pure Python, slower per request (see README).
        "http": "h11",
        "h11_max_incomplete_event_size": settings.http_max_header_bytes,
        "proxy_headers": bool(settings.forwarded_allow_ips),
        "forwarded_allow_ips": settings.forwarded_allow_ips or None,
    }


def run(argv: list[str] | None = None) -> None:
    """`python -m app.main [--host H] [--port P]`: uvicorn with the settings' server options."""
    import uvicorn

    parser = argparse.ArgumentParser(prog="python -m app.main", description=run.__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)
    settings = get_settings()
    options = uvicorn_options(settings)
    if settings.log_format == "json":
        # uvicorn's own lines (start-up, access log) in JSON too: no log config of its own,
        # its loggers propagate to the root handler configured here.
        configure_logging(settings.log_level, "json")
        options["log_config"] = None
    uvicorn.run("app.main:socket_app", host=args.host, port=args.port, **options)


if __name__ == "__main__":
    run()
