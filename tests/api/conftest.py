"""In-process apps: `create_app(settings)` served through httpx's ASGITransport, lifespan run."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app.core.config import Settings
from app.main import create_app
from app.services.video_cache import VideoCache

MakeClient = Callable[..., Awaitable[httpx.AsyncClient]]


def app_settings(tmp_path: Path, **overrides: Any) -> Settings:
    options: dict[str, Any] = {
        "app_env": "test", "redis_url": "memory://", "data_dir": tmp_path / "data",
        "pregen_enabled": False, "video_render_pool": "thread", **overrides}
    return Settings(_env_file=None, **options)


@pytest.fixture
async def make_client(tmp_path: Path) -> AsyncIterator[MakeClient]:
    """`client = await make_client(redis_url=..., admin_token=...)`: a started app's client.

    `client.app` is the FastAPI app (its `state` holds the wired objects)."""
    async with AsyncExitStack() as stack:
        async def make(client_address: str = "127.0.0.1", **overrides: Any) -> httpx.AsyncClient:
            settings = app_settings(tmp_path, **overrides)
            # A cache facade per app, so that two apps (two "instances") can run side by side;
            # the real-server tests cover the spec's singleton.
            app: FastAPI = create_app(settings, cache_facade=VideoCache(settings))
            await stack.enter_async_context(app.router.lifespan_context(app))
            transport = httpx.ASGITransport(app=app.state.socket_app,
                                            client=(client_address, 40000))
            client = httpx.AsyncClient(transport=transport, base_url="http://testserver")
            await stack.enter_async_context(client)
            client.app = app  # type: ignore[attr-defined]
            return client

        yield make


@pytest.fixture
async def client(make_client: MakeClient) -> httpx.AsyncClient:
    return await make_client()
