"""What every CLI command shares: settings (loaded once, refused in one line) and failing.

Tests hand settings in with `CliRunner().invoke(cli, args, obj=settings)`.
"""

from __future__ import annotations

from typing import NoReturn

import typer
from pydantic import ValidationError
from rich.console import Console

from app.core.config import Settings, get_settings

console = Console()
err_console = Console(stderr=True)

USAGE_ERROR = 2  # as click: bad configuration or arguments


def settings_of(ctx: typer.Context) -> Settings:
    """The settings handed in by a test, or the environment's; bad ones exit 2 in one line."""
    if isinstance(ctx.obj, Settings):
        return ctx.obj
    try:
        settings = get_settings()
    except ValidationError as exc:
        fail(f"error: invalid configuration: {describe_invalid(exc)}", USAGE_ERROR)
    ctx.obj = settings
    return settings


def describe_invalid(exc: ValidationError) -> str:
    """One line naming each bad setting; never the value itself (it may hold a password)."""
    parts = []
    for error in exc.errors(include_input=False, include_url=False):
        name = ".".join(str(part) for part in error["loc"]).upper() or "settings"
        message = str(error["msg"]).removeprefix("Value error, ")
        parts.append(message if message.startswith(name) else f"{name}: {message}")
    return "; ".join(parts)


def fail(message: str, code: int = 1) -> NoReturn:
    err_console.print(message, markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(code)
