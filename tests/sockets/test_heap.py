"""The start-up heap is frozen while the app serves: full collections skip it (app/core/heap.py)."""

from __future__ import annotations

import gc
from pathlib import Path

from app.core.config import Settings
from app.core.heap import frozen_startup_heap
from app.main import create_app
from app.services.video_cache import VideoCache


async def test_the_startup_heap_is_frozen_while_serving_and_thawed_after(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, app_env="test", redis_url="memory://",
                        data_dir=tmp_path / "data", pregen_enabled=False,
                        video_render_pool="thread")
    app = create_app(settings, cache_facade=VideoCache(settings))
    assert gc.get_freeze_count() == 0
    async with app.router.lifespan_context(app):
        frozen = gc.get_freeze_count()
        assert frozen > 10_000  # modules, routes, schemas, the deck library
        # what a full collection walks: only what was made since start-up
        assert len(gc.get_objects()) < frozen
    assert gc.get_freeze_count() == 0  # collectable again once the app stopped


def test_the_heap_stays_frozen_until_the_last_app_stops() -> None:
    """Two apps in one process (tests do that): the first to stop must not thaw the other's."""
    with frozen_startup_heap():
        with frozen_startup_heap():
            assert gc.get_freeze_count() > 0
        assert gc.get_freeze_count() > 0  # the other app still serves
    assert gc.get_freeze_count() == 0
