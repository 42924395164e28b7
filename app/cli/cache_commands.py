"""Operator commands for the video cache: stats, get, purge, doctor.

`stats`, `get` and `doctor` only read: they use a read-only cache (no replay, no probe, no
write) or no cache at all, so pointing them at any Redis changes nothing.
"""

from __future__ import annotations

import json
import shutil
from typing import Annotated, Any

import httpx
import typer
from rich.table import Table

from app.cache.connection import mask_url
from app.cache.doctor import diagnose
from app.cache.errors import CacheBackendError
from app.cli.context import USAGE_ERROR, console, err_console, fail, settings_of
from app.services.video_cache import VideoCache

MARKS = {"ok": "[green]✓[/green]", "warn": "[yellow]![/yellow]", "fail": "[red]✗[/red]"}


def _reader(ctx: typer.Context) -> VideoCache:
    cache = VideoCache(settings_of(ctx), read_only=True)
    ctx.call_on_close(cache.close)
    return cache


def _unreachable(cache: VideoCache) -> str:
    return (f"Redis at {mask_url(cache.settings.redis_url)} is unreachable: "
            f"{cache.core.breaker.last_error}")


def _print_stats(data: dict[str, Any], as_json: bool, title: str) -> None:
    if as_json:
        console.print_json(json.dumps(data))
        return
    table = Table("field", "value", title=title)
    for field, value in data.items():
        table.add_row(field, str(value))
    console.print(table)


def stats(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    server: Annotated[str | None, typer.Option(
        "--server", metavar="URL", show_default="this process",
        help="Read a running server's stats (GET URL/api/cache/stats) instead of this "
             "process's own counters.")] = None,
) -> None:
    """Show the cache's stats; exit 1 when Redis (or the server) cannot be reached."""
    if server is not None:
        _print_stats(_server_stats(server), as_json, f"video cache at {server}")
        return
    cache = _reader(ctx)
    data = cache.get_stats()
    _print_stats(data, as_json, "video cache (this process: counters start at zero)")
    if data["redis_configured"] and not data["redis_connected"]:
        fail(_unreachable(cache) + " (total_entries counts this process's memory only)")


def _server_stats(server: str) -> dict[str, Any]:
    url = server.rstrip("/") + "/api/cache/stats"
    if not url.startswith(("http://", "https://")):
        fail(f"error: --server must be an http(s) URL, not {server!r}", USAGE_ERROR)
    try:
        response = httpx.get(url, timeout=5.0)
        response.raise_for_status()
        data = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        fail(f"cannot read {url}: {exc}")
    if not isinstance(data, dict):
        fail(f"cannot read {url}: not a JSON object")
    return data


def get(
    ctx: typer.Context,
    black: Annotated[str, typer.Argument(help="The black card.")],
    whites: Annotated[list[str], typer.Argument(help="Its white cards, in play order.")],
) -> None:
    """Look up one combination; exit 1 when it is not cached or Redis is unreachable."""
    cache = _reader(ctx)
    console.print(f"key: {cache.key_for(black, whites)}")
    if not cache.redis_reachable() and not cache.core.memory_only:
        fail(_unreachable(cache))
    entry = cache.get_entry(black, whites)
    if entry is None:
        console.print("[yellow]not cached[/yellow]")
        raise typer.Exit(1)
    console.print_json(json.dumps(entry.to_dict()))


def purge(
    ctx: typer.Context,
    black: Annotated[str | None, typer.Argument(help="Black card of one entry.",
                                                show_default=False)] = None,
    whites: Annotated[list[str] | None, typer.Argument(help="Its white cards.",
                                                       show_default=False)] = None,
    temporary: Annotated[bool, typer.Option("--temporary",
                                            help="Purge every temporary entry.")] = False,
    everything: Annotated[bool, typer.Option("--all", help="Purge every video entry, "
                                             "permanent winners included.")] = False,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask.")] = False,
) -> None:
    """Delete one entry, every temporary entry, or every entry (permanent winners too)."""
    if black is None and not (temporary or everything):
        fail("error: name an entry, or pass --temporary or --all", USAGE_ERROR)
    cache = VideoCache(settings_of(ctx))
    ctx.call_on_close(cache.close)
    if not cache.redis_reachable():
        fail(_unreachable(cache) + ": nothing purged")
    if black is not None:
        removed = cache.delete(black, whites or [])
        if not cache.core.redis_usable:
            fail(_unreachable(cache) + ": the delete waits in the journal")
        console.print("deleted" if removed else "[yellow]not cached[/yellow]")
        return
    what = "ALL video entries, permanent winners included" if everything else "temporary entries"
    if not yes and not typer.confirm(f"Delete {what}?"):
        raise typer.Exit(1)
    try:
        deleted = cache.purge(temporary_only=not everything)
    except CacheBackendError as exc:
        fail(f"purge failed: {exc}")
    console.print(f"deleted {deleted} entries")


def doctor(ctx: typer.Context) -> None:
    """Check the Redis set-up and the local environment (read-only); exit 1 on a problem."""
    checks = diagnose(settings_of(ctx))
    for check in checks:
        console.print(f"{MARKS[check.status]} {check.text}", highlight=False)
    found = shutil.which("espeak-ng") is not None
    console.print(f"{MARKS['ok' if found else 'warn']} espeak-ng: "
                  f"{'found' if found else 'missing (videos are silent)'}")
    problems = sum(check.status == "fail" for check in checks)
    if problems:
        err_console.print(f"{problems} problem{'s' if problems > 1 else ''} found")
    raise typer.Exit(1 if problems else 0)


def register(app: typer.Typer) -> None:
    for command in (stats, get, purge, doctor):
        app.command()(command)
