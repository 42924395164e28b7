"""The operator's tool: `python -m app.cli --help`."""

from __future__ import annotations

import typer

from app.cli import cache_commands, video_commands

cli = typer.Typer(help="Punchline operations: cache stats, lookups, purge, doctor, videos.",
                  no_args_is_help=True)
cli.command()(cache_commands.stats)
cli.command()(cache_commands.get)
cli.command()(cache_commands.purge)
cli.command()(cache_commands.doctor)
video_commands.register(cli)
