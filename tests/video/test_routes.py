"""The file route (with HTTP Range) and the stats route, through the real router."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from app.video.routes import router
from app.video.service import VideoService, get_video_service
from tests.video.conftest import ServiceFactory


@pytest.fixture
async def served(service_factory: ServiceFactory) -> AsyncIterator[
        tuple[httpx.AsyncClient, VideoService, str, bytes]]:
    service = service_factory()
    url = await service.get_or_create("Range requests are _.", ["Fun for the whole family."])
    sha = url.removeprefix("/videos/").removesuffix(".mp4")
    data = service.storage.path_for(sha).read_bytes()
    app = FastAPI()
    app.include_router(router)
    app.dependency_overrides[get_video_service] = lambda: service
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client, service, url, data


async def test_full_file(served: tuple[httpx.AsyncClient, VideoService, str, bytes]) -> None:
    client, _, url, data = served
    response = await client.get(url)
    assert response.status_code == 200
    assert response.headers["content-type"] == "video/mp4"
    assert response.headers["accept-ranges"] == "bytes"
    assert "immutable" in response.headers["cache-control"]
    assert int(response.headers["content-length"]) == len(data)
    assert response.content == data


@pytest.mark.parametrize("header,start,end", [
    ("bytes=0-99", 0, 99),
    ("bytes=100-", 100, None),
    ("bytes=-500", -500, None),
    ("bytes=10-10", 10, 10),
    ("bytes=0-99999999", 0, None),
])
async def test_single_ranges(served: tuple[httpx.AsyncClient, VideoService, str, bytes],
                             header: str, start: int, end: int | None) -> None:
    client, _, url, data = served
    size = len(data)
    first = start if start >= 0 else size + start
    last = size - 1 if end is None else end
    response = await client.get(url, headers={"Range": header})
    assert response.status_code == 206
    assert response.headers["content-range"] == f"bytes {first}-{last}/{size}"
    assert int(response.headers["content-length"]) == last - first + 1
    assert response.content == data[first:last + 1]


async def test_multiple_ranges(served: tuple[httpx.AsyncClient, VideoService, str, bytes]) -> None:
    client, _, url, data = served
    response = await client.get(url, headers={"Range": "bytes=0-9,20-29"})
    assert response.status_code == 206
    assert response.headers["content-type"].startswith("multipart/byteranges")
    assert data[0:10] in response.content and data[20:30] in response.content


async def test_unsatisfiable_range_is_416(
        served: tuple[httpx.AsyncClient, VideoService, str, bytes]) -> None:
    client, _, url, data = served
    response = await client.get(url, headers={"Range": f"bytes={len(data)}-"})
    assert response.status_code == 416
    assert response.headers["content-range"] == f"bytes */{len(data)}"


async def test_head_has_headers_only(
        served: tuple[httpx.AsyncClient, VideoService, str, bytes]) -> None:
    client, _, url, data = served
    response = await client.head(url)
    assert response.status_code == 200
    assert int(response.headers["content-length"]) == len(data)
    assert response.content == b""


@pytest.mark.parametrize("name", [
    "0" * 64 + ".mp4",  # valid name, no such file
    "A" * 64 + ".mp4", "abc.mp4", "0" * 64 + ".json", "..%2F..%2Fetc%2Fpasswd",
])
async def test_bad_or_unknown_names_are_404(
        served: tuple[httpx.AsyncClient, VideoService, str, bytes], name: str) -> None:
    client = served[0]
    assert (await client.get(f"/videos/{name}")).status_code == 404


async def test_stats_route(served: tuple[httpx.AsyncClient, VideoService, str, bytes]) -> None:
    client, service, url, _ = served
    await service.get_or_create("Range requests are _.", ["Fun for the whole family."])
    stats = (await client.get("/api/video/stats")).json()
    assert stats["generations"] == 1
    assert stats["hits"] == 1
    for name in ("joined", "lock_waits", "failures", "mean_render_seconds"):
        assert name in stats
