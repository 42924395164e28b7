"""Operator commands of the video layer: `reindex` and `warm --top N`.

Register them on the CLI's Typer app with `register(app)`, or one by one:
`app.command("reindex")(reindex_command)` and `app.command("warm")(warm_command)`.

The CLI renders in a thread pool: a process pool would re-import the CLI's `__main__` in each
worker, and a one-shot command has no event loop to protect.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from app.core.config import Settings, get_settings
from app.video.combos import Combo
from app.video.pregen import PregenReport, pregenerate
from app.video.reindex import ReindexReport, reindex
from app.video.service import VideoService, build_provider

console = Console()


def _service(settings: Settings) -> VideoService:
    from app.services.video_cache import video_cache

    return VideoService(settings, cache=video_cache, provider=build_provider(settings,
                                                                             pool="thread"))


def _progress() -> Progress:
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[last]}"), TimeElapsedColumn(), console=console)


async def _run_reindex(settings: Settings, dry_run: bool) -> ReindexReport:
    service = _service(settings)
    await service.cache.astart()
    try:
        total = sum(1 for _ in service.storage.directory.glob("*.mp4")) \
            if service.storage.directory.is_dir() else 0
        with _progress() as progress:
            task = progress.add_task("reindex", total=total, last="")
            return await reindex(service, dry_run=dry_run,
                                 progress=lambda outcome: progress.update(task, advance=1,
                                                                         last=outcome))
    finally:
        await service.aclose()
        await service.cache.aclose()


async def _run_warm(settings: Settings, top: int, limit: int) -> PregenReport:
    service = _service(settings)
    await service.cache.astart()
    try:
        await service.start()
        popular = await service.popularity.top(top)
        with _progress() as progress:
            task = progress.add_task("warm", total=len(popular), last="")

            def step(combo: Combo, outcome: str) -> None:
                progress.update(task, advance=1, last=f"{outcome}: {combo.black[:30]}")

            return await pregenerate(service, top, limit, yield_to_live=False, progress=step)
    finally:
        await service.aclose()
        await service.cache.aclose()


def reindex_command(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Report only, write nothing.")] = False,
) -> None:
    """Rebuild cache entries from the video files' sidecars."""
    settings = get_settings()
    report = asyncio.run(_run_reindex(settings, dry_run))
    table = Table("outcome", "videos", title=f"reindex of {settings.resolved_video_dir}")
    for name in ("scanned", "restored", "promoted", "present", "expired", "orphans",
                 "mismatched"):
        table.add_row(name, str(getattr(report, name)))
    console.print(table)


def warm_command(
    top: Annotated[int | None, typer.Option("--top", min=0,
                                            help="How many popular combinations.")] = None,
    limit: Annotated[int | None, typer.Option("--limit", min=0,
                                              help="Generate at most this many.")] = None,
) -> None:
    """Pre-generate the most played combinations that are not cached yet."""
    settings = get_settings()
    n = settings.pregen_top_n if top is None else top
    report = asyncio.run(_run_warm(settings, n, n if limit is None else limit))
    console.print(f"considered {report.considered}: {report.generated} generated, "
                  f"{report.cached} already cached, {report.failed} failed")
    for error in report.errors:
        console.print(f"[red]failed[/red] {error}")
    if report.failed:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("reindex")(reindex_command)
    app.command("warm")(warm_command)
