"""How long a video may take: one set of numbers, derived from the settings, for every layer.

    generation_budget      one generation in this process (the provider's own deadlines)
    lock_wait_seconds      waiting for another instance's generation (then we may take over)
    video_deadline_seconds the longest `get_or_create` can legitimately take: a full wait on
                           another instance, then a generation of our own, then publishing

The socket layer waits `video_deadline_seconds(settings)` for a winner's video, so it never
reports `video_failed` for a video that the service is still legitimately making.
"""

from __future__ import annotations

from app.core.config import Settings
from app.video.http_provider import CANCEL_TIMEOUT
from app.video.local import STUCK_GRACE

# After waiting for another instance: its lock may outlive it by up to the lock TTL.
_WAIT_MARGIN = 5.0
# Probing, fsyncing and caching a finished file (publish is bounded by disk and cache timeouts).
_PUBLISH_MARGIN = 10.0


def generation_budget(settings: Settings) -> float:
    """The longest one generation of the configured provider takes before it gives up."""
    local = settings.video_render_timeout + STUCK_GRACE
    if settings.video_provider != "http":
        return local
    hosted = settings.http_provider_deadline + CANCEL_TIMEOUT
    return hosted + local if settings.http_provider_fallback_local else hosted


def lock_wait_seconds(settings: Settings) -> float:
    """How long an instance waits for the instance that holds a combination's lock."""
    return max(generation_budget(settings), settings.video_generation_lock_ttl) + _WAIT_MARGIN


def video_deadline_seconds(settings: Settings) -> float:
    """The longest `VideoService.get_or_create` can legitimately take with these settings."""
    return lock_wait_seconds(settings) + generation_budget(settings) + _PUBLISH_MARGIN
