"""Videos of the game's card combinations, made in the background so the game never waits.

The maker is ``app.video.service.get_video_service()`` unless one is injected: anything with
the two methods of the ``VideoMaker`` protocol will do (tests inject fakes). Each played
combination becomes one ``Combination`` here (validated and keyed once), which the service and
the cache then take as it is.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any, Protocol

from app.core.cards import Combination
from app.core.config import get_settings
from app.game import events as ev
from app.sockets import payloads
from app.video.combos import combination_of
from app.video.deadlines import video_deadline_seconds
from app.video.errors import InvalidCardsError
from app.video.queue_model import Priority, RenderOrder
from app.video.service import get_video_service

if TYPE_CHECKING:
    from app.video.dispatch import VideoDispatcher

logger = logging.getLogger(__name__)

Emit = Callable[[str, dict[str, Any], str], Awaitable[None]]  # (event, payload, room channel)


class VideoMaker(Protocol):
    """What the socket layer needs of ``app.video.service.VideoService``."""

    async def get_or_create(self, combo: Combination, /, *, permanent: bool = False) -> str: ...

    async def record_play(self, combo: Combination, /) -> None: ...


def default_video_service() -> VideoMaker:
    """The process's video service (built on first use, so start-up stays cheap)."""
    return get_video_service()


class VideoJobs:
    """Background tasks that call the video service and report to the room."""

    def __init__(
        self,
        emit: Emit,
        service: VideoMaker | None = None,
        *,
        resolve: Callable[[], VideoMaker | None] = default_video_service,
        speculative: bool = True,
        timeout: float | None = None,
    ) -> None:
        self._emit = emit
        self._service = service
        self._resolve = resolve
        self._resolved = service is not None
        self.speculative = speculative
        # A winner's video may legitimately take this long; never report video_failed sooner.
        self.timeout = timeout if timeout is not None else video_deadline_seconds(get_settings())
        self._tasks: set[asyncio.Task[None]] = set()
        self._winners: set[asyncio.Task[None]] = set()  # winners' renders, drained at shutdown

    @property
    def service(self) -> VideoMaker | None:
        if not self._resolved:
            self._service = self._resolve()
            self._resolved = True
        return self._service

    @property
    def pending(self) -> int:
        return len(self._tasks)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def on_revealed(self, e: ev.SubmissionsRevealed) -> None:
        """Count every combination played, and render them ahead of time if configured."""
        if self.service is None:
            return
        for sub in e.submissions:
            try:
                combo = combination_of(e.black_card_text, sub.cards)
            except InvalidCardsError as exc:  # cards from a deck never do this
                logger.warning("round %s: not counting a submission: %s", e.round, exc)
                continue
            self._spawn(self._record(combo))
            if self.speculative:
                dispatcher = self.dispatcher
                if dispatcher is not None:
                    order = RenderOrder.of(combo, Priority.SPECULATIVE)
                    self._spawn(self._submit(dispatcher, order))
                else:
                    self._spawn(self._speculate(combo))

    @property
    def dispatcher(self) -> VideoDispatcher | None:
        """The render queue's dispatcher, when the service has one (app/video/dispatch.py)."""
        return getattr(self.service, "dispatcher", None)

    def on_won(self, channel: str, e: ev.RoundWon) -> None:
        dispatcher = self.dispatcher
        if dispatcher is not None:
            # The queue owns the job from here: durable, and the worker tells the room.
            self._spawn(self._queue_winner(dispatcher, channel, e))
            return
        task = self._spawn(self._winner(channel, e))
        self._winners.add(task)
        task.add_done_callback(self._winners.discard)

    async def _submit(self, dispatcher: VideoDispatcher, order: RenderOrder) -> None:
        try:
            await dispatcher.submit(order)
        except Exception:
            logger.warning("could not queue a %s render", order.priority.label, exc_info=True)

    async def _queue_winner(self, dispatcher: VideoDispatcher, channel: str,
                            e: ev.RoundWon) -> None:
        try:
            combo = combination_of(e.black_card_text, list(e.white_card_texts))
        except InvalidCardsError as exc:
            out = payloads.VideoFailedOut(round=e.round, reason=f"InvalidCardsError: {exc}"[:200])
            await self._emit("video_failed", out.model_dump(), channel)
            return
        order = RenderOrder.of(combo, Priority.WINNER, room=channel.removeprefix("room:"),
                               round=e.round, public_gallery=e.public_gallery)
        await self._submit(dispatcher, order)

    async def _record(self, combo: Combination) -> None:
        service = self.service
        assert service is not None
        try:
            await asyncio.wait_for(service.record_play(combo), self.timeout)
        except Exception:
            logger.warning("record_play failed", exc_info=True)

    async def _speculate(self, combo: Combination) -> None:
        service = self.service
        assert service is not None
        try:
            await asyncio.wait_for(service.get_or_create(combo, permanent=False), self.timeout)
        except Exception:
            logger.info("speculative render failed", exc_info=True)

    async def _winner(self, channel: str, e: ev.RoundWon) -> None:
        whites = list(e.white_card_texts)
        service = self.service
        try:
            if service is None:
                raise RuntimeError("video service unavailable")
            combo = combination_of(e.black_card_text, whites)
            url = await asyncio.wait_for(
                service.get_or_create(combo, permanent=True), self.timeout
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
        # The public gallery (/winners), unless the room opted out. Injected makers (tests'
        # fakes) need not keep a gallery.
        record = getattr(service, "record_winner", None)
        if e.public_gallery and record is not None:
            await record(combo)

    async def close(self, drain: float = 0.0) -> None:
        """At shutdown: let winners' renders finish for up to ``drain`` seconds (their
        ``video_ready`` reaches the room through any instance), cancel everything else."""
        for task in self._tasks - self._winners:
            task.cancel()
        if drain > 0 and self._winners:
            logger.info("waiting up to %.0f s for %d winner video(s)", drain, len(self._winners))
            await asyncio.wait(list(self._winners), timeout=drain)
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
