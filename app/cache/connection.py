"""Building redis-py clients from settings: short timeouts, no retries, passwords masked."""

from __future__ import annotations

import hashlib
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import redis
import redis.asyncio as aioredis
from redis.backoff import NoBackoff
from redis.connection import parse_url
from redis.retry import Retry

from app.core.config import Settings

MEMORY_SCHEMES = ("memory", "mem")


def is_memory_url(url: str) -> bool:
    return urlsplit(url).scheme in MEMORY_SCHEMES


SECRET_QUERY_KEYS = {"password", "username"}


def mask_url(url: str) -> str:
    """The URL with its password (in the authority or the query) replaced by `***`."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        if ":" in userinfo:  # user:password@ (a bare user@ carries no secret)
            netloc = f"{userinfo.split(':', 1)[0]}:***@{host}"
    query = "&".join(
        f"{name}=***" if name.lower() in SECRET_QUERY_KEYS else pair
        for pair in parts.query.split("&") if pair
        for name in [pair.split("=", 1)[0]])
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def effective_url(settings: Settings) -> str:
    """REDIS_URL with REDIS_DB, when set, as its database."""
    if settings.redis_db is None:
        return settings.redis_url
    parts = urlsplit(settings.redis_url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{settings.redis_db}", parts.query,
                       parts.fragment))


def redis_target(settings: Settings) -> str:
    """A short, password-free name of the Redis a write is meant for: host, port and db.

    The outage journal tags each record with it, so a journal is never replayed into another
    Redis than the one its writes were acknowledged for.
    """
    if is_memory_url(settings.redis_url):
        return "memory"
    options = parse_url(effective_url(settings))  # type: ignore[no-untyped-call]
    if "path" in options:
        place = f"unix:{options['path']}"
    else:
        place = f"{options.get('host', 'localhost')}:{options.get('port', 6379)}"
    digest = hashlib.sha256(f"{place}/{options.get('db', 0)}".encode()).hexdigest()
    return digest[:16]


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
