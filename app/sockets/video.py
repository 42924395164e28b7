"""Videos of the game's card combinations, made in the background so the game never waits.

The service is the one of ``app.video.service`` (``get_video_service()``), reached through the
small ``VideoService`` protocol so that it can be injected in tests.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Protocol

from app.game import events as ev
from app.sockets import payloads

logger = logging.getLogger(__name__)

Emit = Callable[[str, dict[str, Any], str], Awaitable[None]]  # (event, payload, room channel)


class VideoService(Protocol):
    async def get_or_create(
        self, black_card: str, white_cards: list[str], permanent: bool = False
    ) -> str: ...

    async def record_play(self, black_card: str, white_cards: list[str]) -> None: ...


def default_video_service() -> VideoService | None:
    """``app.video.service.get_video_service()``, or None while that module does not exist."""
    try:
        module = importlib.import_module("app.video.service")
        service: VideoService = module.get_video_service()
    except Exception:
        logger.warning("video service unavailable; rounds will report video_failed", exc_info=True)
        return None
    return service


class VideoJobs:
    """Background tasks that call the video service and report to the room."""

    def __init__(
        self,
        emit: Emit,
        service: VideoService | None = None,
        *,
        resolve: Callable[[], VideoService | None] = default_video_service,
        speculative: bool = True,
        timeout: float = 180.0,
    ) -> None:
        self._emit = emit
        self._service = service
        self._resolve = resolve
        self._resolved = service is not None
        self.speculative = speculative
        self.timeout = timeout
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def service(self) -> VideoService | None:
        if not self._resolved:
            self._service = self._resolve()
            self._resolved = True
        return self._service

    @property
    def pending(self) -> int:
        return len(self._tasks)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def on_revealed(self, e: ev.SubmissionsRevealed) -> None:
        """Count every combination played, and render them ahead of time if configured."""
        if self.service is None:
            return
        for sub in e.submissions:
            whites = list(sub.white_card_texts)
            self._spawn(self._record(e.black_card_text, whites))
            if self.speculative:
                self._spawn(self._speculate(e.black_card_text, whites))

    def on_won(self, channel: str, e: ev.RoundWon) -> None:
        self._spawn(self._winner(channel, e))

    async def _record(self, black: str, whites: list[str]) -> None:
        service = self.service
        assert service is not None
        try:
            await asyncio.wait_for(service.record_play(black, whites), self.timeout)
        except Exception:
            logger.warning("record_play failed", exc_info=True)

    async def _speculate(self, black: str, whites: list[str]) -> None:
        service = self.service
        assert service is not None
        try:
            await asyncio.wait_for(
                service.get_or_create(black, whites, permanent=False), self.timeout
            )
        except Exception:
            logger.info("speculative render failed", exc_info=True)

    async def _winner(self, channel: str, e: ev.RoundWon) -> None:
        whites = list(e.white_card_texts)
        service = self.service
        try:
            if service is None:
                raise RuntimeError("video service unavailable")
            url = await asyncio.wait_for(
                service.get_or_create(e.black_card_text, whites, permanent=True), self.timeout
            )
        except Exception as exc:
            logger.warning("video for round %s failed", e.round, exc_info=True)
            reason = f"{type(exc).__name__}: {exc}"[:200] if str(exc) else type(exc).__name__
            out = payloads.VideoFailedOut(round=e.round, reason=reason)
            await self._emit("video_failed", out.model_dump(), channel)
            return
        ready = payloads.VideoReadyOut(
            round=e.round, black_card=e.black_card_text, white_cards=whites, video_url=url
        )
        await self._emit("video_ready", ready.model_dump(), channel)

    async def close(self) -> None:
        """Cancel what is still running (at shutdown)."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
