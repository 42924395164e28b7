"""LOG_FORMAT: text keeps the spec's lines, json writes one object per line."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

import pytest

from app.core.config import Settings
from app.core.logging import TEXT_FORMAT, JsonFormatter


def record(message: str, *args: object, exc: BaseException | None = None) -> logging.LogRecord:
    exc_info = (type(exc), exc, exc.__traceback__) if exc is not None else None
    return logging.LogRecord("app.services.video_cache", logging.WARNING, __file__, 1, message,
                             args, exc_info)


def test_json_lines_hold_the_rendered_message() -> None:
    line = JsonFormatter().format(record("⚠️  Redis connection failed: %s", "refused"))
    entry = json.loads(line)
    assert entry["message"] == "⚠️  Redis connection failed: refused"
    assert entry["level"] == "WARNING" and entry["logger"] == "app.services.video_cache"
    assert entry["time"].endswith("+00:00")
    assert "\n" not in line


def test_json_lines_carry_the_traceback_on_one_line() -> None:
    try:
        raise ValueError("boom")
    except ValueError as exc:
        line = JsonFormatter().format(record("failed", exc=exc))
    assert "\n" not in line
    assert "ValueError: boom" in json.loads(line)["exc_info"]


def test_text_stays_the_default_format() -> None:
    assert Settings(_env_file=None).log_format == "text"
    line = "✅ Connected to Redis for video caching"
    text = logging.Formatter(TEXT_FORMAT).format(record(line))
    assert text.endswith(f"WARNING app.services.video_cache: {line}")


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_configure_logging_in_a_fresh_process(log_format: str) -> None:
    code = ("import logging; from app.core.logging import configure_logging; "
            f"configure_logging('INFO', {log_format!r}); "
            "logging.getLogger('app.x').info('hello %s', 'world')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stderr.strip()
    if log_format == "json":
        assert json.loads(out)["message"] == "hello world"
    else:
        assert out.endswith("INFO    app.x: hello world")
