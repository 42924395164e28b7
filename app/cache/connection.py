"""Building redis-py clients from settings: short timeouts, no retries, passwords masked."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

import redis
import redis.asyncio as aioredis
from redis.backoff import NoBackoff
from redis.retry import Retry

from app.core.config import Settings

MEMORY_SCHEMES = ("memory", "mem")


def is_memory_url(url: str) -> bool:
    return urlsplit(url).scheme in MEMORY_SCHEMES


def mask_url(url: str) -> str:
    """The URL with its password replaced by `***`, safe for logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, f"{user}:***@{host}", parts.path, parts.query, parts.fragment))


def effective_url(settings: Settings) -> str:
    """REDIS_URL with REDIS_DB, when set, as its database."""
    if settings.redis_db is None:
        return settings.redis_url
    parts = urlsplit(settings.redis_url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{settings.redis_db}", parts.query,
                       parts.fragment))


def client_options(settings: Settings) -> dict[str, Any]:
    # redis-py retries three times by default: against a dead server that turns one call into
    # seconds. The breaker handles failures, so each call fails fast instead.
    return {
        "socket_connect_timeout": settings.redis_connect_timeout,
        "socket_timeout": settings.redis_socket_timeout,
        "retry": Retry(NoBackoff(), 0),
        "retry_on_timeout": False,
        "max_connections": settings.redis_max_connections,
        "health_check_interval": 0,
    }


def make_sync_client(settings: Settings, **extra: Any) -> redis.Redis:
    return redis.Redis.from_url(effective_url(settings), **{**client_options(settings), **extra})


def make_async_client(settings: Settings, **extra: Any) -> aioredis.Redis:
    return aioredis.Redis.from_url(effective_url(settings),
                                   **{**client_options(settings), **extra})
