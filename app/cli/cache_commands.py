"""Operator commands for the video cache: stats, get, purge, doctor."""

from __future__ import annotations

import json
import shutil
from typing import Annotated

import redis
import typer
from rich.console import Console
from rich.table import Table

from app.cache.connection import mask_url
from app.cache.keys import KEY_PREFIX
from app.services.video_cache import video_cache

console = Console()

EVICTING_POLICIES = {"allkeys-lru", "allkeys-lfu", "allkeys-random"}


def stats(as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False) -> None:
    """Show get_stats() of the cache."""
    data = video_cache.get_stats()
    if as_json:
        console.print_json(json.dumps(data))
        return
    table = Table("field", "value", title="video cache")
    for field, value in data.items():
        table.add_row(field, str(value))
    console.print(table)


def get(black: str, whites: Annotated[list[str], typer.Argument(help="white cards")]) -> None:
    """Look up one combination."""
    entry = video_cache.get_entry(black, whites)
    console.print(f"key: {video_cache.key_for(black, whites)}")
    if entry is None:
        console.print("[yellow]not cached[/yellow]")
        raise typer.Exit(1)
    console.print_json(json.dumps(entry.to_dict()))


def purge(
    black: Annotated[str | None, typer.Argument(help="black card of one entry")] = None,
    whites: Annotated[list[str] | None, typer.Argument(help="its white cards")] = None,
    temporary: Annotated[bool, typer.Option(help="purge every temporary entry")] = False,
    everything: Annotated[bool, typer.Option("--all", help="purge every video entry")] = False,
    yes: Annotated[bool, typer.Option("--yes", help="do not ask")] = False,
) -> None:
    """Delete one entry, every temporary entry, or every entry (permanent winners too)."""
    if black is not None:
        removed = video_cache.delete(black, whites or [])
        console.print("deleted" if removed else "[yellow]not cached[/yellow]")
        return
    if not (temporary or everything):
        raise typer.BadParameter("name an entry, or pass --temporary or --all")
    client = video_cache.sync_redis()
    if client is None:
        console.print("[red]Redis is not reachable: nothing to purge[/red]")
        raise typer.Exit(2)
    what = "ALL video entries, permanent winners included" if everything else "temporary entries"
    if not yes and not typer.confirm(f"Delete {what}?"):
        raise typer.Exit(1)
    deleted = 0
    for key in client.scan_iter(match=KEY_PREFIX + "*", count=1000):
        if everything or client.ttl(key) >= 0:
            deleted += int(client.delete(key))
    console.print(f"deleted {deleted} entries")


def doctor() -> None:
    """Check the Redis set-up and the local environment; exit 1 on a problem."""
    problems = 0
    settings = video_cache.settings
    console.print(f"REDIS_URL: {mask_url(settings.redis_url)}")
    client = video_cache.sync_redis()
    if client is None:
        problems += 1
        console.print(f"[red]✗ Redis unreachable[/red]: {video_cache.core.breaker.last_error}")
    else:
        try:
            problems += _check_redis(client)
        except redis.RedisError as exc:
            problems += 1
            console.print(f"[red]✗ Redis check failed[/red]: {exc}")
    pending = len(video_cache.core.journal.pending())
    mark = "[green]✓[/green]" if pending == 0 else "[yellow]![/yellow]"
    console.print(f"{mark} journal: {pending} writes waiting for replay")
    for tool in ("espeak-ng",):
        found = shutil.which(tool) is not None
        console.print(f"{'[green]✓' if found else '[yellow]!'}[/] {tool}: "
                      f"{'found' if found else 'missing (videos are silent)'}")
    raise typer.Exit(1 if problems else 0)


def _check_redis(client: redis.Redis) -> int:
    problems = 0
    info = client.info()
    console.print(f"[green]✓[/green] Redis {info.get('redis_version')} answers")
    policy = str(client.config_get("maxmemory-policy").get("maxmemory-policy", "?"))
    if policy in EVICTING_POLICIES:
        problems += 1
        console.print(f"[red]✗ maxmemory-policy {policy} can evict permanent winners[/red]; "
                      "use volatile-lru")
    else:
        console.print(f"[green]✓[/green] maxmemory-policy {policy}")
    aof = str(client.config_get("appendonly").get("appendonly", "no"))
    save = str(client.config_get("save").get("save", ""))
    if aof != "yes" and not save:
        console.print("[yellow]! no persistence (appendonly no, no save points): "
                      "permanent entries vanish when Redis restarts[/yellow]")
    else:
        console.print(f"[green]✓[/green] persistence: appendonly={aof} save='{save}'")
    return problems
