"""The operator's tool: `python -m app.cli --help`.

Read-only commands (`stats`, `get`, `doctor`) never write to Redis or replay the outage
journal. Commands that must reach Redis (`purge`, `reindex`, `warm`, `takedown`) say so and
exit 1 when they cannot. A malformed configuration exits 2 with one line.
"""

from __future__ import annotations

import typer

from app.cli import cache_commands, queue_commands, video_commands, winners_commands

cli = typer.Typer(help="Punchline operator commands: cache stats, purge, doctor, videos.",
                  no_args_is_help=True, rich_markup_mode=None, pretty_exceptions_enable=False,
                  context_settings={"show_default": True})
cache_commands.register(cli)
video_commands.register(cli)
winners_commands.register(cli)
queue_commands.register(cli)  # videos retry / videos dead: the render queue's dead letters
