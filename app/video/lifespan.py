"""The video layer's part of the FastAPI lifespan.

    async with video_lifespan(service):
        yield
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from app.core.shutdown import bounded_step
from app.video.dispatch import VideoDispatcher
from app.video.pregen import Pregenerator
from app.video.queue_worker import Emit
from app.video.reindex import index_healer
from app.video.service import VideoService, get_video_service
from app.video.sweeper import TemporarySweeper

# A web instance's shutdown lets winners run by its local runner (memory://, or a Redis
# outage) finish for this long; queued ones are durable and need no wait.
LOCAL_DRAIN_SECONDS = 8.0


@asynccontextmanager
async def video_lifespan(service: VideoService | None = None, *,
                         emit: Emit | None = None) -> AsyncIterator[VideoService]:
    """Start the render pool, the index healer, the temporary-video sweeper
    (app/video/sweeper.py) and pre-generation; stop them in reverse order and close the
    providers on exit.

    The healer rebuilds the cache index from the stored videos when Redis comes back without
    its data (app/cache/healer.py); it does nothing on a memory-only cache or with
    `CACHE_INDEX_CHECK_INTERVAL=0`. Enter this after the cache has started
    (`await video_cache.astart()`), and leave it before the cache closes.

    With `emit` (the Socket.IO server's: event, payload, room channel), the render queue's
    dispatcher starts too (app/video/dispatch.py): the game then queues its renders, and in
    `VIDEO_WORKER_MODE=embedded` this process also works the queue.
    """
    service = service or get_video_service()
    await service.start()
    dispatcher = None
    if emit is not None:
        dispatcher = VideoDispatcher(service.settings, service, emit)
        await dispatcher.start()
        service.dispatcher = dispatcher
    healer = index_healer(service)
    pregen = Pregenerator(service) if service.settings.pregen_enabled else None
    sweeper = TemporarySweeper(service)  # VIDEO_SWEEP_INTERVAL; 0: off
    try:
        healer.start()
        sweeper.start()
        if pregen is not None:
            pregen.start()
        yield service
    finally:
        try:
            if pregen is not None:
                async with bounded_step("pre-generation"):
                    await pregen.stop()
            async with bounded_step("index healer"):
                await healer.stop()
            async with bounded_step("temporary video sweeper"):
                await sweeper.stop()
        finally:
            if dispatcher is not None:
                service.dispatcher = None
                async with bounded_step("render queue"):
                    await dispatcher.stop(drain=LOCAL_DRAIN_SECONDS)
            async with bounded_step("video service"):
                await service.aclose()
