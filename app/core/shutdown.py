"""Bounded shutdown steps: a stop that hangs is logged with every pending task, then skipped.

A process that never exits is worse than one that exits with a warning: the orchestrator would
SIGKILL it after its grace period, and the logs would not say which part was stuck.

    async with bounded_step("video service"):
        await service.aclose()
"""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

logger = logging.getLogger(__name__)

STEP_TIMEOUT = 15.0


def pending_tasks_report() -> str:
    """The stack of every pending task of the running loop, for a log line."""
    out = io.StringIO()
    current = asyncio.current_task()
    for task in asyncio.all_tasks():
        if task is not current and not task.done():
            task.print_stack(limit=8, file=out)
    return out.getvalue()


@asynccontextmanager
async def bounded_step(name: str, timeout: float = STEP_TIMEOUT) -> AsyncIterator[None]:
    try:
        async with asyncio.timeout(timeout):
            yield
    except TimeoutError:
        logger.error("shutdown step %r did not finish in %.1f s; skipped. Pending tasks:\n%s",
                     name, timeout, pending_tasks_report())
