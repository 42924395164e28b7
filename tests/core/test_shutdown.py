"""A shutdown step that hangs is logged with the pending tasks and skipped."""

from __future__ import annotations

import asyncio
import logging

import pytest

from app.core.shutdown import bounded_step


async def test_a_hanging_step_is_logged_with_its_stack_and_skipped(
        caplog: pytest.LogCaptureFixture) -> None:
    async def stuck_forever() -> None:
        await asyncio.Event().wait()

    stuck = asyncio.create_task(stuck_forever(), name="stuck-helper")
    after = []
    with caplog.at_level(logging.ERROR, logger="app.core.shutdown"):
        async with bounded_step("the stuck part", timeout=0.05):
            await asyncio.wait({stuck})  # waits without cancelling it, like a stop that hangs
        after.append("went on")
    assert after == ["went on"]
    message = caplog.records[-1].getMessage()
    assert "'the stuck part' did not finish" in message
    assert "stuck_forever" in message  # the stack says where it hangs
    stuck.cancel()


async def test_a_quick_step_logs_nothing(caplog: pytest.LogCaptureFixture) -> None:
    async with bounded_step("quick", timeout=1.0):
        await asyncio.sleep(0)
    assert not caplog.records
