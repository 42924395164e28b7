"""Fixtures building isolated VideoCache instances over a real Redis or memory."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from app.core.config import Settings
from app.services.video_cache import VideoCache

CacheFactory = Callable[..., VideoCache]


def make_settings(tmp_path: Path, redis_url: str, **overrides: Any) -> Settings:
    options: dict[str, Any] = {"data_dir": tmp_path / "data", **overrides}
    return Settings(_env_file=None, redis_url=redis_url, **options)


@pytest.fixture
def cache_factory(tmp_path: Path) -> Iterator[CacheFactory]:
    made: list[VideoCache] = []

    def build(redis_url: str, **overrides: Any) -> VideoCache:
        cache = VideoCache(make_settings(tmp_path, redis_url, **overrides))
        made.append(cache)
        return cache

    yield build
    for cache in made:
        cache.close()


@pytest.fixture(params=["redis", "memory"])
def backend_url(request: pytest.FixtureRequest) -> str:
    """Every behaviour test runs against both stores."""
    if request.param == "redis":
        return str(request.getfixturevalue("redis_url"))
    return "memory://"


@pytest.fixture
def cache(cache_factory: CacheFactory, backend_url: str) -> VideoCache:
    return cache_factory(backend_url)
