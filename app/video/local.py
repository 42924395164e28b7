"""`LocalRenderer`: the offline provider. Renders in a bounded pool, never on the event loop.

The pool is a process pool by default (`video_render_pool`): the frame loop is Python and holds
the GIL between Pillow and x264 calls, and in a thread that shows up as event-loop lag (see
docs/videos.md for the measurements). Each render carries a deadline that the worker checks
between frames, so a timed-out render stops by itself; a worker that does not stop is killed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import select
import shutil
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from app.core.config import Settings
from app.video.errors import RenderError, RenderTimeoutError
from app.video.provider import VideoRequest
from app.video.render import RESOLUTIONS, RenderJob, RenderResult, render_video

logger = logging.getLogger(__name__)

WORKER_NICE = 10
# Grace after the deadline before a render that did not stop by itself counts as stuck.
STUCK_GRACE = 2.0


def _exit_with(app_pid: int) -> None:
    """Exit as soon as the app process is gone, however it died (SIGKILL included).

    The worker's parent is the forkserver, not the app, and the worker holds the forkserver's
    "parent alive" pipe, so neither `getppid()` nor the forkserver notices the app's death. A
    pidfd of the app itself does: it becomes readable when the app exits. Without pidfd (not
    Linux >= 5.3) the app's pid is polled once a second.
    """
    try:
        fd = os.pidfd_open(app_pid)
    except ProcessLookupError:
        os._exit(1)  # the app died before this worker started
    except (AttributeError, OSError):
        while True:
            time.sleep(1.0)
            try:
                os.kill(app_pid, 0)
            except ProcessLookupError:
                os._exit(1)
            except PermissionError:
                pass  # alive, owned by someone else: cannot be our app, but keep waiting
    select.select([fd], [], [])
    os._exit(1)


def _init_worker(app_pid: int) -> None:
    # Ctrl-C goes to the whole process group: the server shuts the pool down, not the workers.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_exit_with, args=(app_pid,), daemon=True, name="app-watch").start()
    # Renders are background work: when the CPUs are busy, the event loop's process goes first.
    with contextlib.suppress(OSError):
        os.nice(WORKER_NICE)
    from app.video.fonts import load_fontset

    load_fontset()


def _warm_up() -> bool:
    return True


class LocalRenderer:
    """Renders the card text into an animated MP4 with PyAV + Pillow (+ espeak-ng narration)."""

    name = "local"

    def __init__(
        self,
        settings: Settings,
        *,
        pool: str | None = None,
        render: Callable[[RenderJob, str], RenderResult] = render_video,
    ) -> None:
        self.settings = settings
        self.render = render  # a module-level function (it is pickled into worker processes)
        self.stuck_grace = STUCK_GRACE
        self.pool_kind = pool or settings.video_render_pool
        self.workers = settings.video_render_workers
        self.timeout = settings.video_render_timeout
        self.espeak = shutil.which("espeak-ng") if settings.video_narration else None
        self._executor: Executor | None = None
        self._slots: asyncio.Semaphore | None = None
        self.last_result: RenderResult | None = None
        self.renders = 0

    def _pool(self) -> Executor:
        if self._executor is None:
            if self.pool_kind == "thread":
                self._executor = ThreadPoolExecutor(self.workers, thread_name_prefix="video-render")
            else:
                self._executor = ProcessPoolExecutor(
                    self.workers,
                    mp_context=multiprocessing.get_context("forkserver"),
                    initializer=_init_worker,
                    initargs=(os.getpid(),),
                )
        return self._executor

    def _semaphore(self) -> asyncio.Semaphore:
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.workers)
        return self._slots

    def job_for(self, request: VideoRequest, deadline: float | None = None) -> RenderJob:
        width, height = RESOLUTIONS[request.resolution]
        return RenderJob(
            black=request.black_card,
            whites=request.white_cards,
            width=width,
            height=height,
            narration=self.espeak is not None,
            espeak=self.espeak,
            deadline=deadline,
        )

    async def start(self) -> None:
        """Start the workers now rather than on the first render (optional)."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._pool(), _warm_up)

    async def generate(self, request: VideoRequest, dest: Path) -> None:
        async with self._semaphore():
            deadline = time.time() + self.timeout
            job = self.job_for(request, deadline)
            loop = asyncio.get_running_loop()
            future = loop.run_in_executor(self._pool(), self.render, job, str(dest))
            try:
                result = await asyncio.wait_for(future, self.timeout + self.stuck_grace)
            except TimeoutError:
                self._kill_stuck_pool()
                raise RenderTimeoutError(
                    f"local render did not finish within {self.timeout:g} s"
                ) from None
            except BrokenProcessPool as exc:
                self._executor = None
                raise RenderError("the render worker died") from exc
        self.last_result = result
        self.renders += 1
        logger.debug("rendered %s in %.3f s (%d frames, narrated=%s)", request.sha256[:12],
                     result.seconds, result.frames, result.narrated)

    def _kill_stuck_pool(self) -> None:
        executor, self._executor = self._executor, None
        if executor is None:
            return
        logger.error("a render worker is stuck past its deadline; replacing the pool")
        processes = getattr(executor, "_processes", None) or {}
        for process in list(processes.values()):
            process.kill()
        executor.shutdown(wait=False, cancel_futures=True)

    async def aclose(self) -> None:
        executor, self._executor = self._executor, None
        if executor is not None:
            await asyncio.to_thread(executor.shutdown, True, cancel_futures=True)
