"""Pre-generation of popular combinations, as temporary cache entries.

A background task (started from the lifespan) wakes every `pregen_interval` seconds, reads the
`pregen_top_n` most played combinations and generates at most `pregen_max_per_run` of those
that are not cached yet, one at a time, and only while no game generation is in flight: live
rounds always come first. `python -m app.cli warm --top N` runs the same pass once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from app.core.cards import Combination
from app.video.errors import VideoGenerationError
from app.video.service import VideoService, get_video_service

logger = logging.getLogger(__name__)

Progress = Callable[[Combination, str], None]  # (combo, outcome): "cached", "generated", "failed"


@dataclass
class PregenReport:
    considered: int = 0
    cached: int = 0
    generated: int = 0
    failed: int = 0
    deferred: bool = False  # stopped early to leave the renderer to live rounds
    errors: list[str] = field(default_factory=list)


async def pregenerate(
    service: VideoService,
    top_n: int,
    max_generations: int,
    *,
    yield_to_live: bool = True,
    progress: Progress | None = None,
    stop: asyncio.Event | None = None,
) -> PregenReport:
    """One pass over the `top_n` most played combinations; it ends early once `stop` is set."""
    report = PregenReport()
    for combo, _score in await service.popularity.top(top_n):
        report.considered += 1
        if await service.cache.aget_entry(combo) is not None:
            report.cached += 1
            if progress:
                progress(combo, "cached")
            continue
        if report.generated + report.failed >= max_generations:
            break
        if stop is not None and stop.is_set():  # shutting down: no new generation
            break
        if yield_to_live and service.in_flight > 0:
            report.deferred = True
            break
        try:
            await service.get_or_create(combo, permanent=False)
        except VideoGenerationError as exc:
            report.failed += 1
            report.errors.append(f"{combo.black[:40]!r}: {exc}")
            logger.warning("pre-generation failed for %r: %s", combo.black[:40], exc)
            if progress:
                progress(combo, "failed")
            continue
        report.generated += 1
        if progress:
            progress(combo, "generated")
    return report


async def run_pregeneration(
    stop_event: asyncio.Event, service: VideoService | None = None
) -> None:
    """Pre-generate until `stop_event` is set (rate-limited by the pregen_* settings)."""
    service = service or get_video_service()
    settings = service.settings
    while not stop_event.is_set():
        try:
            report = await pregenerate(service, settings.pregen_top_n, settings.pregen_max_per_run,
                                       stop=stop_event)
            if report.generated or report.failed:
                logger.info("pre-generation: %d generated, %d failed, %d already cached",
                            report.generated, report.failed, report.cached)
        except Exception:
            logger.error("pre-generation pass failed", exc_info=True)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop_event.wait(), settings.pregen_interval)


class Pregenerator:
    """`start()` / `await stop()` around `run_pregeneration`, for the FastAPI lifespan."""

    def __init__(self, service: VideoService | None = None) -> None:
        self.service = service
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._stop.clear()
            self._task = asyncio.create_task(run_pregeneration(self._stop, self.service),
                                             name="video-pregeneration")

    async def stop(self) -> None:
        self._stop.set()
        task, self._task = self._task, None
        if task is not None:
            try:
                await asyncio.wait_for(task, 5.0)
            except TimeoutError:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
