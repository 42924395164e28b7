"""HttpProvider against a fake provider on a real loopback HTTP server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest

from app.video.backoff import Backoff, parse_retry_after
from app.video.errors import (
    ProviderError,
    ProviderJobFailed,
    ProviderResultExpired,
    ProviderTimeoutError,
)
from app.video.http_provider import HttpProvider, idempotency_key, json_path
from app.video.local import LocalRenderer
from app.video.provider import VideoRequest
from app.video.render import RenderJob, render_video
from tests.video.conftest import ServiceFactory, video_settings
from tests.video.fake_provider import FakeProvider
from tests.video.mp4 import decode

REQUEST = VideoRequest("Hosted AI makes _.", ("Expensive cat videos.",), "video:" + "cd" * 32)


@pytest.fixture(scope="module")
def small_mp4(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = tmp_path_factory.mktemp("provider") / "result.mp4"
    render_video(RenderJob("A provider made _.", ("this",)), str(path))
    return path.read_bytes()


@pytest.fixture
async def fake(small_mp4: bytes) -> AsyncIterator[FakeProvider]:
    server = FakeProvider(video=small_mp4)
    await server.start()
    yield server
    await server.stop()


class Sleeps:
    """Records the provider's waits; waits only a moment for real."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        import asyncio

        self.delays.append(seconds)
        await asyncio.sleep(min(seconds, 0.01))


def provider_for(fake: FakeProvider, tmp_path: Path, fallback: bool = False,
                 sleep: Sleeps | None = None, **overrides: Any) -> HttpProvider:
    settings = video_settings(tmp_path, **{**fake.settings(), **overrides})
    local = LocalRenderer(settings) if fallback else None
    kwargs: dict[str, Any] = {"sleep": sleep} if sleep is not None else {}
    return HttpProvider(settings, fallback=local, backoff=Backoff(0.01, 0.05), **kwargs)


async def test_queued_running_succeeded(fake: FakeProvider, tmp_path: Path,
                                        small_mp4: bytes) -> None:
    provider = provider_for(fake, tmp_path)
    dest = tmp_path / "out.mp4"
    try:
        await provider.generate(REQUEST, dest)
    finally:
        await provider.aclose()
    assert dest.read_bytes() == small_mp4
    assert decode(dest).codec == "h264"
    [submit] = fake.requests_to("/v1/jobs", "POST")
    assert submit.headers["Idempotency-Key"] == idempotency_key(REQUEST)
    assert submit.headers["Idempotency-Key"] == f"punchline-{REQUEST.sha256}"
    assert submit.headers["Authorization"] == "Bearer sekret"
    # the composed sentence: the answer loses its capital mid-sentence (docs/videos.md)
    assert submit.body["prompt"] == "Hosted AI makes expensive cat videos."
    assert submit.body["white_cards"] == ["Expensive cat videos."]
    assert fake.polls["job-1"] == 2  # queued (submit) -> running -> succeeded
    assert not fake.cancelled


async def test_the_token_never_goes_to_another_origin(fake: FakeProvider,
                                                      tmp_path: Path) -> None:
    fake.result_host = "localhost"  # same server, another origin (like a CDN)
    provider = provider_for(fake, tmp_path)
    try:
        await provider.generate(REQUEST, tmp_path / "out.mp4")
    finally:
        await provider.aclose()
    [download] = fake.requests_to("/files/")
    assert "Authorization" not in download.headers
    assert all(s.headers.get("Authorization") == "Bearer sekret"
               for s in fake.requests_to("/v1/jobs"))


async def test_failed_job(fake: FakeProvider, tmp_path: Path) -> None:
    fake.statuses = ["queued", "failed"]
    provider = provider_for(fake, tmp_path)
    try:
        with pytest.raises(ProviderJobFailed, match="content policy violation"):
            await provider.generate(REQUEST, tmp_path / "out.mp4")
    finally:
        await provider.aclose()
    assert not fake.requests_to("/files/")


async def test_slow_job_is_cancelled_at_the_deadline(fake: FakeProvider, tmp_path: Path) -> None:
    fake.statuses = ["queued", "running"]  # never finishes
    provider = provider_for(fake, tmp_path, http_provider_deadline=0.3)
    try:
        with pytest.raises(ProviderTimeoutError):
            await provider.generate(REQUEST, tmp_path / "out.mp4")
    finally:
        await provider.aclose()
    assert fake.cancelled == ["job-1"]
    assert fake.polls["job-1"] >= 1
    assert provider.cancelled_jobs == 1


async def test_429_and_5xx_are_retried_honouring_retry_after(fake: FakeProvider,
                                                             tmp_path: Path) -> None:
    fake.submit_errors = [429, 500]
    fake.status_errors = [503]
    fake.download_errors = [502]
    fake.retry_after = "2"
    sleeps = Sleeps()
    provider = provider_for(fake, tmp_path, sleep=sleeps)
    try:
        await provider.generate(REQUEST, tmp_path / "out.mp4")
    finally:
        await provider.aclose()
    submits = fake.requests_to("/v1/jobs", "POST")
    assert len(submits) == 3
    assert {s.headers["Idempotency-Key"] for s in submits} == {idempotency_key(REQUEST)}
    assert sleeps.delays.count(2.0) == 4  # every retry waited what Retry-After said
    assert provider.retries == 4
    assert decode(tmp_path / "out.mp4").codec == "h264"


async def test_backoff_without_retry_after(fake: FakeProvider, tmp_path: Path) -> None:
    fake.submit_errors = [500, 500, 500]
    sleeps = Sleeps()
    provider = provider_for(fake, tmp_path, sleep=sleeps)
    try:
        await provider.generate(REQUEST, tmp_path / "out.mp4")
    finally:
        await provider.aclose()
    retry_waits = sleeps.delays[:3]
    assert all(0 < d <= 0.05 for d in retry_waits)


async def test_client_errors_are_not_retried(fake: FakeProvider, tmp_path: Path) -> None:
    fake.submit_errors = [400]
    provider = provider_for(fake, tmp_path)
    try:
        with pytest.raises(ProviderError, match="HTTP 400"):
            await provider.generate(REQUEST, tmp_path / "out.mp4")
    finally:
        await provider.aclose()
    assert len(fake.requests_to("/v1/jobs", "POST")) == 1


@pytest.mark.parametrize("code", [403, 404])
async def test_expired_result_url_is_an_error(fake: FakeProvider, tmp_path: Path,
                                              code: int) -> None:
    fake.download_status = code
    provider = provider_for(fake, tmp_path)
    try:
        with pytest.raises(ProviderResultExpired, match=str(code)):
            await provider.generate(REQUEST, tmp_path / "out.mp4")
    finally:
        await provider.aclose()
    assert len(fake.requests_to("/files/")) == 1  # not retried


async def test_expired_result_url_falls_back_to_local(fake: FakeProvider,
                                                      tmp_path: Path) -> None:
    fake.download_status = 403
    provider = provider_for(fake, tmp_path, fallback=True)
    try:
        await provider.generate(REQUEST, tmp_path / "out.mp4")
    finally:
        await provider.aclose()
    assert provider.fallbacks == 1
    info = decode(tmp_path / "out.mp4")
    assert (info.codec, info.width, info.height) == ("h264", 640, 360)


async def test_unreachable_provider_times_out_then_falls_back(tmp_path: Path) -> None:
    from tests.support.redis_server import free_port

    dead = f"http://127.0.0.1:{free_port()}"
    settings = video_settings(tmp_path, video_provider="http",
                              http_provider_submit_url=f"{dead}/v1/jobs",
                              http_provider_deadline=0.3)
    provider = HttpProvider(settings, fallback=LocalRenderer(settings),
                            backoff=Backoff(0.01, 0.05))
    try:
        await provider.generate(REQUEST, tmp_path / "out.mp4")
    finally:
        await provider.aclose()
    assert provider.fallbacks == 1 and provider.retries >= 1
    assert decode(tmp_path / "out.mp4").codec == "h264"


async def test_service_caches_our_url_never_the_providers(
        fake: FakeProvider, tmp_path: Path, service_factory: ServiceFactory,
        small_mp4: bytes) -> None:
    provider = provider_for(fake, tmp_path)
    service = service_factory(provider=provider, **fake.settings())
    url = await service.get_or_create("Hosted AI makes _.", ["Expensive cat videos."])
    sha = service.cache.key_for("Hosted AI makes _.", ["Expensive cat videos."])[6:]
    assert url == f"/videos/{sha}.mp4"
    assert service.storage.path_for(sha).read_bytes() == small_mp4
    sidecar = service.storage.read_meta(sha)
    assert sidecar is not None and sidecar.provider == "http"
    assert str(fake.port) not in (await service.cache.aget("Hosted AI makes _.",
                                                           ["Expensive cat videos."]) or "")


def test_json_path() -> None:
    data = {"output": {"url": "u", "items": [{"url": "a"}, {"url": "b"}]}, "id": 7}
    assert json_path(data, "output.url") == "u"
    assert json_path(data, "output.items.1.url") == "b"
    assert json_path(data, "output.items[0].url") == "a"
    assert json_path(data, "output.items[-1].url") == "b"
    assert json_path(data, "id") == 7
    assert json_path(data, "output.missing.url") is None
    assert json_path(data, "output.items.9.url") is None
    assert json_path(["x"], "0") == "x"


def test_parse_retry_after() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("1.5") == 1.5
    assert parse_retry_after(format_datetime(now + timedelta(seconds=30), usegmt=True),
                             now) == 30.0
    assert parse_retry_after(format_datetime(now - timedelta(seconds=30), usegmt=True),
                             now) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_backoff_is_capped_and_grows() -> None:
    import random

    backoff = Backoff(base=0.5, cap=4.0)
    rng = random.Random(1)
    assert 0.25 <= backoff.delay(0, rng) <= 0.5
    assert 2.0 <= backoff.delay(10, rng) <= 4.0
