"""`python -m app.worker`: one render worker on the durable queue (`make worker`).

Start as many as the machines allow, on any machine that shares Redis and the video storage
(the same VIDEO_DIR volume, or the same bucket). The queue lives on VIDEO_QUEUE_REDIS_URL, else
REDIS_URL; never on a Cluster (app/video/queue.py): with a Cluster REDIS_URL and no
VIDEO_QUEUE_REDIS_URL the worker refuses to start. Each takes jobs from the queue, renders them
with the configured provider, and tells the room through Socket.IO's Redis channel (a
write-only manager: it never receives). SIGTERM or Ctrl-C: running jobs get 5 s to finish,
the rest go back to the queue. SIGKILL: another worker takes its jobs back once their heartbeat
is `VIDEO_JOB_HEARTBEAT` seconds old; its half-written files are removed by the next sweep of
the folder (named after their process, so no live render is touched).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
from typing import Any

from app.cache.connection import tls_options
from app.core.config import Settings, get_settings
from app.core.logging import configure_logging
from app.services.video_cache import video_cache
from app.sockets.manager import client_manager, socketio_url
from app.video.queue import RenderQueue, no_queue_reason, queue_redis_url
from app.video.queue_model import Priority
from app.video.queue_worker import OrderExecutor, QueueWorker
from app.video.service import VideoService, set_video_service

logger = logging.getLogger("app.worker")

STALE_TEMPS_EVERY = 30.0  # seconds between looks for dead renders' files on this host


async def _sweep_temps(service: VideoService) -> None:
    while True:
        await asyncio.sleep(STALE_TEMPS_EVERY)
        with contextlib.suppress(OSError):
            removed = await asyncio.to_thread(service.storage.remove_stale_temps)
            if removed:
                logger.info("removed %d file(s) of dead renders", removed)


async def run_worker(settings: Settings, *, stop: asyncio.Event | None = None) -> None:
    """Work the queue until `stop` is set (or SIGTERM / SIGINT)."""
    if queue_redis_url(settings) is None:  # memory://, or a Cluster without a queue Redis
        raise SystemExit(f"a render worker needs a Redis for the render queue: "
                         f"{no_queue_reason(settings)}")
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    video_cache.configure(settings)
    await video_cache.astart()
    service = VideoService(settings, cache=video_cache)
    set_video_service(service)
    await service.start()  # render pool, and the files of dead renders of this host
    manager = client_manager(socketio_url(settings), settings.socketio_channel, write_only=True,
                             tls=tls_options(settings))
    assert manager is not None

    async def emit(event: str, data: dict[str, Any], channel: str) -> None:
        await manager.emit(event, data, room=channel, namespace="/")

    queue = RenderQueue(settings)

    async def pressure() -> bool:
        return await queue.backlog.waiting(Priority.WINNER) > 0

    worker = QueueWorker(queue, OrderExecutor(service, emit, pressure), settings)
    sweeper = asyncio.create_task(_sweep_temps(service), name="stale-render-files")
    worker.start()
    logger.info("render worker started on %s (queue %s, %d at once)",
                queue.where, settings.video_queue_name,
                settings.video_worker_concurrency)
    try:
        await stop.wait()
    finally:
        logger.info("render worker stopping")
        sweeper.cancel()
        await worker.stop()
        await queue.aclose()
        close = getattr(manager, "aclose", None)
        if close is not None:
            await close()
        await service.aclose()
        await video_cache.aclose()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m app.worker", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--concurrency", type=int, default=None,
                        help="jobs at once (default VIDEO_WORKER_CONCURRENCY)")
    args = parser.parse_args(argv)
    settings = get_settings()
    if args.concurrency is not None:
        settings = settings.model_copy(update={"video_worker_concurrency": args.concurrency})
    configure_logging(settings.log_level, settings.log_format)
    asyncio.run(run_worker(settings))


if __name__ == "__main__":
    main()
