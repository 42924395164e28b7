"""Shared FastAPI dependencies: settings, the cache, rate limits, and admin authentication.

`create_app` binds the process's objects through `app.dependency_overrides`, so a route states
what it needs (`CacheDep`, `SettingsDep`) and a test app can swap any of them.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.core.config import Settings, get_settings
from app.core.errors import ApiError
from app.core.ratelimit import RateLimits
from app.services.video_cache import VideoCache

SettingsDep = Annotated[Settings, Depends(get_settings)]


def get_video_cache() -> VideoCache:
    """The spec's process singleton; `create_app` overrides it with the app's cache."""
    from app.services.video_cache import video_cache

    return video_cache


CacheDep = Annotated[VideoCache, Depends(get_video_cache)]


def get_rate_limits(request: Request) -> RateLimits:
    limits = getattr(request.app.state, "rate_limits", None)
    if limits is None:  # an app wired by hand (tests): count in this app's memory
        limits = request.app.state.rate_limits = RateLimits("memory://")
    return limits


RateLimitsDep = Annotated[RateLimits, Depends(get_rate_limits)]


def client_address(request: Request) -> str:
    """The client's address; behind a trusted proxy uvicorn has already put X-Forwarded-For
    here (FORWARDED_ALLOW_IPS)."""
    return request.client.host if request.client is not None else "unknown"


async def enforce(limits: RateLimits, name: str, key: str, rate: str) -> None:
    """Count one request; past the rate, 429 with Retry-After in the one error shape."""
    verdict = await limits.check(name, key, rate)
    if not verdict.allowed:
        raise ApiError(429, "rate_limited", f"too many requests; retry in {verdict.retry_after} s",
                       headers={"Retry-After": str(verdict.retry_after)})


async def limit_room_lookups(request: Request, settings: SettingsDep,
                             limits: RateLimitsDep) -> None:
    await enforce(limits, "http_rooms", client_address(request), settings.http_rate_limit_rooms)


# auto_error=False: a missing or malformed header is ours to answer (401, the one error shape).
bearer = HTTPBearer(auto_error=False, description="`Authorization: Bearer <ADMIN_TOKEN>`")
FAILED_AUTH = "admin_auth_failures"


def token_matches(presented: str, expected: str) -> bool:
    """Constant-time comparison of bytes: any header value, even non-ASCII, is just wrong.

    Starlette decodes header bytes as latin-1, so encoding back to latin-1 gives the exact
    bytes the client sent; the setting is compared as UTF-8.
    """
    try:
        raw = presented.encode("latin-1")
    except UnicodeEncodeError:  # cannot come from a real header; refuse rather than fail
        return False
    return hmac.compare_digest(raw, expected.encode("utf-8"))


async def require_admin(
    request: Request,
    settings: SettingsDep,
    limits: RateLimitsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> None:
    """Admin operations need `Authorization: Bearer <ADMIN_TOKEN>`.

    403 when admin operations are disabled (no ADMIN_TOKEN), 429 past HTTP_RATE_LIMIT_ADMIN or
    after ADMIN_AUTH_FAILURE_LIMIT wrong tokens from this address, 401 for anything else that is
    not the token (missing, malformed, wrong).
    """
    if not settings.admin_token:
        raise ApiError(403, "admin_disabled",
                       "admin operations are disabled: set ADMIN_TOKEN to enable them")
    address = client_address(request)
    await enforce(limits, "http_admin", address, settings.http_rate_limit_admin)
    failures = settings.admin_auth_failure_limit
    if not await limits.test(FAILED_AUTH, address, failures):
        wait = await limits.retry_after(FAILED_AUTH, address, failures)
        raise ApiError(429, "rate_limited", f"too many wrong admin tokens; retry in {wait} s",
                       headers={"Retry-After": str(wait)})
    if credentials is None or not token_matches(credentials.credentials, settings.admin_token):
        await limits.hit(FAILED_AUTH, address, failures)
        raise ApiError(401, "unauthorized", "a valid admin token is required",
                       headers={"WWW-Authenticate": "Bearer"})


AdminDep = Annotated[None, Depends(require_admin)]
