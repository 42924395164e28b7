"""`takedown ID`: remove a winner from the public gallery and its share page, for good.

The same as `DELETE /api/winners/{id}`. With Redis it must reach Redis (a take-down that only
reached this process's memory would leave the gallery listing the video): it exits 1 and
changes nothing when Redis is unreachable. With `REDIS_URL=memory://` it writes the record on
disk only, which a running memory-only server reads at its next start; use the REST route
to take a winner down from a running server at once.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from app.cache.connection import mask_url
from app.cache.errors import CacheBackendError
from app.cli.context import console, fail, settings_of
from app.core.config import Settings
from app.video.service import VideoService, build_provider
from app.video.storage import SHA_RE

NOT_FOUND = 1


async def _take_down(settings: Settings, sha: str) -> tuple[bool, bool]:
    """(taken down, whether Redis was reached)."""
    from app.services.video_cache import VideoCache

    cache = VideoCache(settings)
    service = VideoService(settings, cache=cache, provider=build_provider(settings, pool="thread"))
    try:
        reached = await cache.aredis_reachable()
        memory_only = cache.core.memory_only
        if not reached and not memory_only:
            raise CacheBackendError(cache.core.breaker.last_error or "unreachable")
        return await service.winners.take_down(sha), reached
    finally:
        await service.aclose()
        await cache.aclose()


def takedown_command(
    ctx: typer.Context,
    video_id: Annotated[str, typer.Argument(metavar="ID",
                                            help="the video's 64-hex content address")],
) -> None:
    """Take a winner down from the public gallery (/winners) and its share page (/w/ID)."""
    settings = settings_of(ctx)
    sha = video_id.strip().lower()
    if not SHA_RE.fullmatch(sha):
        fail(f"error: {video_id!r} is not a video id (64 hex digits)", 2)
    try:
        done, reached = asyncio.run(_take_down(settings, sha))
    except CacheBackendError as exc:
        fail(f"Redis at {mask_url(settings.redis_url)} is unreachable: {exc}. "
             "Nothing was taken down; try again when Redis is back.")
    if not done:
        fail(f"{sha} is not in the gallery (unknown, never public, or already taken down).",
             NOT_FOUND)
    console.print(f"Taken down: {sha}" + ("" if reached else
                  " (on disk only: REDIS_URL is memory://; a running server sees it at its "
                  "next start)"), markup=False, highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command("takedown")(takedown_command)
