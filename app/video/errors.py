"""Exceptions raised by the video layer.

    VideoError
    └── VideoGenerationError            what `get_or_create` raises; the game catches this one
        ├── InvalidCardsError           bad input (also a ValueError); never retried, never cached
        ├── RecentFailureError          the negative cache says this combination failed moments ago
        ├── GenerationWaitTimeout       another instance holds the lock and did not finish in time
        ├── VideoDeadlineExceeded       the whole generation ran past `video_deadline_seconds`
        ├── RenderError                 the local renderer failed
        │   └── RenderTimeoutError      ... or ran past `video_render_timeout`
        ├── StorageError                the file could not be published or is not a playable MP4
        ├── VideoBusyError              too many generations pending: refused, not queued
        └── ProviderError               a hosted provider failed
            ├── ProviderJobFailed       the job ended in a failed / cancelled state
            ├── ProviderTimeoutError    the job did not finish before `http_provider_deadline`
            └── ProviderResultExpired   the result URL answered 403/404/410 (provider URLs expire)
"""

from __future__ import annotations


class VideoError(Exception):
    """Base of every error of the video layer."""


class VideoGenerationError(VideoError):
    """A video could not be produced for a card combination."""


class InvalidCardsError(VideoGenerationError, ValueError):
    """The card texts cannot be rendered (empty, too long, too many cards)."""


class RecentFailureError(VideoGenerationError):
    """The same combination failed less than `video_negative_ttl` seconds ago."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class GenerationWaitTimeout(VideoGenerationError):
    """Another instance is generating this combination and did not finish before our deadline."""


class VideoDeadlineExceeded(VideoGenerationError):
    """The generation did not finish within `video_deadline_seconds` (e.g. queued too long)."""


class VideoBusyError(VideoGenerationError):
    """Too many generations are pending (`video_max_pending`); this one was not started."""


class RenderError(VideoGenerationError):
    """The local renderer failed."""


class RenderTimeoutError(RenderError):
    """The local renderer ran past its deadline."""


class StorageError(VideoGenerationError):
    """A produced file could not be published, or is not a playable MP4."""


class ProviderError(VideoGenerationError):
    """A hosted video provider failed."""


class ProviderJobFailed(ProviderError):
    """The provider reported the job as failed or cancelled."""


class ProviderTimeoutError(ProviderError):
    """The provider job did not finish before the deadline (the job was cancelled)."""


class ProviderResultExpired(ProviderError):
    """The provider's result URL is gone (403/404/410): provider URLs expire."""

