"""The cached value: JSON with `video_url`, `created_at` (ISO-8601, UTC) and `permanent`."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any, NamedTuple

MAX_URL_LENGTH = 2048


class CorruptEntryError(ValueError):
    """A stored value is not a cache entry of ours."""


def validate_video_url(video_url: object) -> str:
    if not isinstance(video_url, str):
        raise TypeError(f"video_url must be a str, not {type(video_url).__name__}")
    if not video_url:
        raise ValueError("video_url must be a non-empty string")
    if len(video_url) > MAX_URL_LENGTH:
        raise ValueError(f"video_url is longer than {MAX_URL_LENGTH} characters")
    if any(ord(char) < 0x21 or ord(char) == 0x7F for char in video_url):
        raise ValueError("video_url must not contain spaces or control characters")
    lowered = video_url.lower()
    if lowered.startswith(("http://", "https://")):
        if len(video_url.split("://", 1)[1]) == 0:
            raise ValueError("video_url has no host")
        return video_url
    if video_url.startswith("/") and not video_url.startswith("//"):
        return video_url
    raise ValueError("video_url must be an http(s) URL or a path starting with '/'")


_scan_json = json.JSONDecoder().raw_decode


def _loads(raw: bytes | str) -> Any:
    """json.loads for our compact values, without its per-call encoding detection."""
    text = raw.decode("utf-8") if type(raw) is bytes else raw
    if type(text) is str and text[:1] == "{":
        data, end = _scan_json(text)
        if end == len(text):
            return data
    return json.loads(raw)  # anything unusual: the full parser decides


def utc_now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


class CacheEntry(NamedTuple):
    """One cached video (a NamedTuple: built on every Redis hit, so it must be cheap)."""

    video_url: str
    created_at: str
    permanent: bool

    @classmethod
    def new(cls, video_url: str, permanent: bool) -> CacheEntry:
        return cls(video_url=video_url, created_at=utc_now_iso(), permanent=permanent)

    def to_dict(self) -> dict[str, Any]:
        return {"video_url": self.video_url, "created_at": self.created_at,
                "permanent": self.permanent}

    def encode(self) -> bytes:
        return json.dumps(self.to_dict(), separators=(",", ":")).encode("utf-8")

    @classmethod
    def from_dict(cls, data: object) -> CacheEntry:
        if type(data) is not dict:
            raise CorruptEntryError("value is not a JSON object")
        url, created, permanent = data.get("video_url"), data.get("created_at"), data.get(
            "permanent")
        if type(url) is not str or type(created) is not str:
            raise CorruptEntryError("video_url or created_at is missing")
        if type(permanent) is not bool:
            raise CorruptEntryError("permanent is missing or not a boolean")
        return cls(url, created, permanent)

    @classmethod
    def decode(cls, raw: bytes | str) -> CacheEntry:
        try:
            data = _loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise CorruptEntryError("value is not JSON") from exc
        # from_dict, inlined: this runs on every Redis hit.
        if type(data) is dict:
            url, created, permanent = data.get("video_url"), data.get("created_at"), data.get(
                "permanent")
            if type(url) is str and type(created) is str and type(permanent) is bool:
                return cls(url, created, permanent)
        return cls.from_dict(data)  # raises CorruptEntryError saying what is wrong


def expiry_for(entry: CacheEntry, temporary_ttl: float, now: float | None = None) -> float | None:
    """Absolute expiry (epoch seconds) of a newly written entry; None when permanent."""
    if entry.permanent:
        return None
    return (time.time() if now is None else now) + temporary_ttl
