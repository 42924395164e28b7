"""Fixtures of the video tests: settings under tmp_path, services over a real cache, providers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from app.core.config import Settings
from app.services.video_cache import VideoCache
from app.video.errors import RenderError
from app.video.local import LocalRenderer
from app.video.provider import VideoProvider, VideoRequest
from app.video.service import VideoService

ServiceFactory = Callable[..., VideoService]


def video_settings(tmp_path: Path, redis_url: str = "memory://", **overrides: Any) -> Settings:
    options: dict[str, Any] = {
        "data_dir": tmp_path / "data",
        "video_dir": tmp_path / "videos",
        "video_render_pool": "thread",
        "video_narration": False,
        "pregen_enabled": False,
        **overrides,
    }
    return Settings(_env_file=None, redis_url=redis_url, **options)


class CountingProvider:
    """Wraps a real provider and counts the generations that reach it."""

    def __init__(self, inner: VideoProvider) -> None:
        self.inner = inner
        self.name = f"counting-{inner.name}"
        self.calls = 0
        self.gate: asyncio.Event | None = None  # when set, generations wait for it
        self.started = asyncio.Event()

    async def generate(self, request: VideoRequest, dest: Path) -> None:
        self.calls += 1
        self.started.set()
        if self.gate is not None:
            await self.gate.wait()
        await self.inner.generate(request, dest)

    async def aclose(self) -> None:
        await self.inner.aclose()


class FailingProvider:
    name = "failing"

    def __init__(self) -> None:
        self.calls = 0

    async def generate(self, request: VideoRequest, dest: Path) -> None:
        self.calls += 1
        raise RenderError("the renderer is broken today")

    async def aclose(self) -> None:
        return None


@pytest.fixture
async def service_factory(tmp_path: Path) -> AsyncIterator[ServiceFactory]:
    """Builds services over their own VideoCache; all are closed at the end of the test."""
    made: list[VideoService] = []

    def build(redis_url: str = "memory://", provider: VideoProvider | None = None,
              settings: Settings | None = None, **overrides: Any) -> VideoService:
        settings = settings or video_settings(tmp_path, redis_url, **overrides)
        service = VideoService(settings, cache=VideoCache(settings),
                               provider=provider or LocalRenderer(settings))
        made.append(service)
        return service

    yield build
    for service in made:
        await service.aclose()
        await service.cache.aclose()


@pytest.fixture(params=["redis", "memory"])
def backend_url(request: pytest.FixtureRequest) -> str:
    if request.param == "redis":
        return str(request.getfixturevalue("redis_url"))
    return "memory://"
