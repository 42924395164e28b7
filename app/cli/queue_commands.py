"""`videos retry` and `videos dead`: the render queue's dead letters (app/video/queue.py).

A winner whose render failed `VIDEO_JOB_MAX_FAILURES` times is dead-lettered (its room got
`video_failed`). Once the cause is fixed, `python -m app.cli videos retry` puts every dead
letter (or the keys given) back in the queue; when the video lands, its room still gets
`video_ready`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Annotated

import typer
from redis.exceptions import RedisError
from rich.table import Table

from app.cache.connection import mask_url
from app.cli.context import console, fail, settings_of
from app.core.config import Settings
from app.video.queue import NoQueueRedis, RenderQueue, queue_redis_url

videos = typer.Typer(help="The render queue: dead letters.", no_args_is_help=True)


def _queue(settings: Settings) -> RenderQueue:
    """The queue on VIDEO_QUEUE_REDIS_URL, else REDIS_URL; fails (exit 1) when there is none."""
    try:
        return RenderQueue(settings)
    except NoQueueRedis as exc:
        fail(f"{exc}.")


def _where(settings: Settings) -> str:
    return mask_url(queue_redis_url(settings) or settings.redis_url)


async def _retry(settings: Settings, keys: list[str] | None) -> list[str]:
    queue = _queue(settings)
    try:
        return await queue.retry_dead(keys)
    finally:
        await queue.aclose()


async def _dead(settings: Settings) -> dict[str, dict[str, object]]:
    queue = _queue(settings)
    try:
        return await queue.dead_letters()
    finally:
        await queue.aclose()


@videos.command("retry")
def retry_command(
    ctx: typer.Context,
    keys: Annotated[list[str] | None, typer.Argument(
        help="Job keys to retry (see `videos dead`); all dead letters when none.")] = None,
) -> None:
    """Put dead-lettered render jobs back in the queue."""
    settings = settings_of(ctx)
    try:
        retried = asyncio.run(_retry(settings, keys or None))
    except (RedisError, OSError) as exc:
        fail(f"the render queue's Redis at {_where(settings)} is unreachable "
             f"({type(exc).__name__}); nothing was retried.")
    console.print(f"retried {len(retried)} dead-lettered job(s)")
    for key in retried:
        console.print(f"  {key}")


@videos.command("dead")
def dead_command(ctx: typer.Context) -> None:
    """List the dead-lettered render jobs."""
    settings = settings_of(ctx)
    try:
        letters = asyncio.run(_dead(settings))
    except (RedisError, OSError) as exc:
        fail(f"the render queue's Redis at {_where(settings)} is unreachable "
             f"({type(exc).__name__}).")
    table = Table("key", "room", "failures", "at", "error", title="dead letters")
    for key, record in sorted(letters.items()):
        order = record["order"]
        room = order.get("room", "") if isinstance(order, dict) else ""
        at = dt.datetime.fromtimestamp(float(str(record["at"])), dt.UTC).isoformat(
            timespec="seconds")
        table.add_row(key, str(room), str(record["failures"]), at, str(record["error"])[:80])
    console.print(table)


def register(app: typer.Typer) -> None:
    app.add_typer(videos, name="videos")
