"""Socket.IO protocol of the game (docs/protocol.md).

Wiring, in ``app/main.py``::

    game_server = register_socket_handlers(sio)
    # lifespan: await game_server.start() ... await game_server.stop()
"""

from __future__ import annotations

from collections.abc import Callable

import socketio

from app.cache.shared import SharedRedis
from app.core.config import Settings, get_settings
from app.core.ratelimit import RateLimits
from app.game.registry import RoomRegistry, get_registry
from app.sockets.connections import default_shared
from app.sockets.server import GameServer
from app.sockets.video import VideoMaker, default_video_service
from app.state.wiring import GameState

__all__ = ["GameServer", "VideoMaker", "register_socket_handlers"]


def register_socket_handlers(
    sio: socketio.AsyncServer,
    *,
    registry: RoomRegistry | None = None,
    state: GameState | None = None,
    video_service: VideoMaker | None = None,
    settings: Settings | None = None,
    resolve_video: Callable[[], VideoMaker | None] = default_video_service,
    tick_interval: float = 0.5,
    rate_limits: RateLimits | None = None,
    shared: Callable[[], SharedRedis | None] = default_shared,
) -> GameServer:
    """Register the game's events on ``sio`` and return the server object.

    ``state`` holds the rooms (default: in this process, for ``registry``'s decks; the app
    passes its own, which its lifespan connects to Redis). ``registry`` defaults to the
    process-wide one (``get_registry()``), which loads the decks now (a bad deck file fails
    at start-up). Without
    ``video_service``, ``app.video.service.get_video_service()`` is looked up on first use.
    ``rate_limits`` (the app's, started and closed by its owner) counts the per-address limits;
    without it the game server makes and closes its own. ``shared`` gives the Redis commands
    that count open connections per address across instances (default: the process cache's
    ``video_cache.shared``; ``lambda: None`` counts in this process only). ``sio`` must have
    been created with ``always_connect=True``.
    """
    registry = registry if registry is not None else get_registry()
    if state is None:
        state = GameState(settings if settings is not None else get_settings(), registry.library)
    server = GameServer(
        sio,
        registry,
        state.book,
        state.instances,
        settings=settings,
        video_service=video_service,
        resolve_video=resolve_video,
        tick_interval=tick_interval,
        rate_limits=rate_limits,
        shared=shared,
    )
    server.register()
    return server
