"""Operator commands of the video layer: `reindex` and `warm --top N`.

Both must reach Redis: a rebuild or a warm-up that lands in this process's memory and journal
would vanish with it. So each says so and exits 1 when Redis is unreachable at the start, and
when it became unreachable during the run.

The CLI renders in a thread pool: a process pool would re-import the CLI's `__main__` in each
worker, and a one-shot command has no event loop to protect.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from app.cache.connection import mask_url
from app.cli.context import console, fail, settings_of
from app.core.cards import Combination
from app.core.config import Settings
from app.video.pregen import PregenReport, pregenerate
from app.video.reindex import REPORT_FIELDS, ReindexReport, reindex
from app.video.service import VideoService, build_provider
from app.video.storage import build_storage

T = TypeVar("T")
DRY_RUN_LABELS = {"restored": "would restore", "promoted": "would promote"}


class RedisUnreachable(Exception):
    pass


def _service(settings: Settings) -> VideoService:
    from app.services.video_cache import VideoCache

    return VideoService(settings, cache=VideoCache(settings),
                        provider=build_provider(settings, pool="thread"))


def _progress() -> Progress:
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[last]}"), TimeElapsedColumn(), console=console)


async def _with_redis(settings: Settings, work: Callable[[VideoService], Awaitable[T]]) -> T:
    """Run `work` on a service whose cache reaches Redis; raise RedisUnreachable otherwise."""
    service = _service(settings)
    cache = service.cache
    try:
        if not await cache.aredis_reachable():
            raise RedisUnreachable(cache.core.breaker.last_error or "REDIS_URL is memory://")
        result = await work(service)
        if not cache.core.redis_usable or cache.core.counters.fallbacks:
            raise RedisUnreachable(
                f"lost during the run ({cache.core.breaker.last_error}); "
                f"{cache.core.counters.fallbacks} operations went to this process's memory "
                "and the journal only")
        return result
    finally:
        await service.aclose()
        await cache.aclose()


def _unreachable(settings: Settings, exc: RedisUnreachable, what: str) -> str:
    return f"Redis at {mask_url(settings.redis_url)} is unreachable: {str(exc).rstrip('.')}. {what}"


async def _run_reindex(settings: Settings, dry_run: bool) -> ReindexReport:
    async def work(service: VideoService) -> ReindexReport:
        with _progress() as progress:
            total = await asyncio.to_thread(service.storage.count_videos)  # folder or bucket
            task = progress.add_task("reindex", total=total, last="")
            def step(outcome: str) -> None:
                label = DRY_RUN_LABELS.get(outcome, outcome) if dry_run else outcome
                progress.update(task, advance=1, last=label)

            return await reindex(service, dry_run=dry_run, progress=step)

    return await _with_redis(settings, work)


async def _run_warm(settings: Settings, top: int, limit: int) -> PregenReport:
    async def work(service: VideoService) -> PregenReport:
        await service.start()
        popular = await service.popularity.top(top)
        with _progress() as progress:
            task = progress.add_task("warm", total=len(popular), last="")

            def step(combo: Combination, outcome: str) -> None:
                progress.update(task, advance=1, last=f"{outcome}: {combo.black[:30]}")

            return await pregenerate(service, top, limit, yield_to_live=False, progress=step)

    return await _with_redis(settings, work)


def reindex_command(
    ctx: typer.Context,
    dry_run: Annotated[bool, typer.Option("--dry-run",
                                          help="Report what would change; write nothing.")] = False,
) -> None:
    """Rebuild missing cache entries from the stored videos' sidecars."""
    settings = settings_of(ctx)
    try:
        report = asyncio.run(_run_reindex(settings, dry_run))
    except RedisUnreachable as exc:
        fail(_unreachable(settings, exc, "Nothing was reindexed." if dry_run else
                          "The index is not rebuilt; run reindex again when Redis is back."))
    title = f"reindex of {build_storage(settings).location}" + (" (dry run)" if dry_run else "")
    table = Table("outcome", "videos", title=title)
    for name in REPORT_FIELDS:
        label = DRY_RUN_LABELS.get(name, name) if dry_run else name
        table.add_row(label, str(getattr(report, name)))
    console.print(table)


def warm_command(
    ctx: typer.Context,
    top: Annotated[int | None, typer.Option(
        "--top", min=0, show_default="PREGEN_TOP_N",
        help="How many popular combinations to consider.")] = None,
    limit: Annotated[int | None, typer.Option(
        "--limit", min=0, show_default="--top", help="Generate at most this many.")] = None,
) -> None:
    """Pre-generate the most played combinations that are not cached yet."""
    settings = settings_of(ctx)
    n = settings.pregen_top_n if top is None else top
    try:
        report = asyncio.run(_run_warm(settings, n, n if limit is None else limit))
    except RedisUnreachable as exc:
        fail(_unreachable(settings, exc, "Nothing was warmed."))
    console.print(f"considered {report.considered}: {report.generated} generated, "
                  f"{report.cached} already cached, {report.failed} failed")
    for error in report.errors:
        console.print(f"[red]failed[/red] {error}")
    if report.failed:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("reindex")(reindex_command)
    app.command("warm")(warm_command)
