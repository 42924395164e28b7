"""One deadline, one value: the socket layer waits exactly as long as the service may take."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from app.core.config import get_settings
from app.sockets.video import VideoJobs, default_video_service
from app.video.deadlines import generation_budget, lock_wait_seconds, video_deadline_seconds
from app.video.service import get_video_service, set_video_service
from tests.video.conftest import ServiceFactory, video_settings


async def _no_emit(event: str, payload: dict[str, Any], room: str) -> None:
    return None


@pytest.mark.parametrize("provider,fallback", [("local", True), ("http", True), ("http", False)])
def test_the_deadline_covers_a_full_wait_then_a_generation(
        tmp_path: Path, provider: str, fallback: bool) -> None:
    settings = video_settings(tmp_path, video_provider=provider,
                              http_provider_fallback_local=fallback)
    budget = generation_budget(settings)
    assert budget >= settings.video_render_timeout
    if provider == "http":
        assert budget >= settings.http_provider_deadline + fallback * settings.video_render_timeout
    assert lock_wait_seconds(settings) >= max(budget, settings.video_generation_lock_ttl)
    assert video_deadline_seconds(settings) >= lock_wait_seconds(settings) + budget


def test_defaults_of_the_issue(tmp_path: Path) -> None:
    # The socket layer used to give up after max(60, 120) + 30 = 150 s while the service could
    # legitimately wait 185 s for another instance with the HTTP provider.
    settings = video_settings(tmp_path, video_provider="http")
    assert video_deadline_seconds(settings) > 185


def test_the_service_waits_what_the_deadlines_say(service_factory: ServiceFactory) -> None:
    service = service_factory(video_provider="http")
    assert service.wait_timeout == lock_wait_seconds(service.settings)
    assert service.deadline == video_deadline_seconds(service.settings)


def test_video_jobs_wait_the_service_deadline_by_default() -> None:
    jobs = VideoJobs(_no_emit)
    assert jobs.timeout == video_deadline_seconds(get_settings())
    assert VideoJobs(_no_emit, timeout=3.0).timeout == 3.0


def test_the_socket_layer_uses_the_process_service(service_factory: ServiceFactory) -> None:
    service = service_factory()
    set_video_service(service)
    try:
        assert default_video_service() is service is get_video_service()
        assert VideoJobs(_no_emit).service is service
    finally:
        set_video_service(None)

