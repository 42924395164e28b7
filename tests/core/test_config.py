"""Settings: refused configurations fail at start-up, secrets stay out of messages."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from app.cache.connection import effective_url, mask_url
from app.core.config import Settings


@pytest.mark.parametrize("url", ["redis://localhost:63a79", "http://localhost:6379",
                                 "localhost:6379", "redis://:topsecret@host:port"])
def test_malformed_redis_url_is_refused_without_echoing_it(url: str) -> None:
    with pytest.raises(ValidationError, match="REDIS_URL") as raised:
        Settings(_env_file=None, redis_url=url)
    assert "topsecret" not in str(raised.value)


@pytest.mark.parametrize("url", ["redis://localhost:6379", "rediss://u:p@h:6380/2",
                                 "unix:///tmp/redis.sock", "memory://"])
def test_valid_redis_urls(url: str) -> None:
    assert Settings(_env_file=None, redis_url=url).redis_url == url


def test_secrets_are_not_in_repr() -> None:
    settings = Settings(_env_file=None, redis_url="redis://:pw-123@h", admin_token="adm-456",
                        http_provider_token="prov-789")
    text = repr(settings)
    assert "pw-123" not in text and "adm-456" not in text and "prov-789" not in text


def test_production_needs_an_admin_token() -> None:
    with pytest.raises(ValidationError, match="ADMIN_TOKEN"):
        Settings(_env_file=None, app_env="production")
    assert Settings(_env_file=None, app_env="production", admin_token="s3cure").admin_token


def test_redis_db_overrides_the_url_database() -> None:
    settings = Settings(_env_file=None, redis_url="redis://h:1/5?x=1", redis_db=2)
    assert effective_url(settings) == "redis://h:1/2?x=1"
    assert effective_url(Settings(_env_file=None, redis_url="redis://h:1/5")) == "redis://h:1/5"


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("redis://localhost:6379", "redis://localhost:6379"),
        ("redis://:pw@h:1/0", "redis://:***@h:1/0"),
        ("redis://user:pw@h", "redis://user:***@h"),
        ("redis://user@h", "redis://user@h"),
        ("redis://h/0?password=pw&db=1", "redis://h/0?password=***&db=1"),
        ("rediss://u:p@w@[::1]:6379/2", "rediss://u:***@[::1]:6379/2"),
    ],
)
def test_mask_url(url: str, masked: str) -> None:
    assert mask_url(url) == masked
