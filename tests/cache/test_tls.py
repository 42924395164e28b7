"""The video cache over TLS (`rediss://` + REDIS_TLS_*), against a real TLS-only redis-server.

Certificates are made by the test with openssl: a CA, a server certificate for 127.0.0.1, a
client certificate (redis-server asks for one by default), and a second, unrelated CA.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from app.cache.doctor import diagnose
from app.cache.keys import key_for
from tests.cache.conftest import CacheFactory, make_settings
from tests.support.topologies import TlsRedis

PASSWORD = "tls-secret-pw"


@pytest.fixture(scope="module")
def tls_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsRedis]:
    server = TlsRedis(tmp_path_factory.mktemp("tls"), password=PASSWORD)
    server.start()
    yield server
    server.stop()


def tls_files(server: TlsRedis, ca: Path | None = None) -> dict[str, Path]:
    return {"redis_tls_ca_file": ca or server.ca[0],
            "redis_tls_cert_file": server.client_cert[0],
            "redis_tls_key_file": server.client_cert[1]}


def test_cache_over_tls(tls_redis: TlsRedis, cache_factory: CacheFactory) -> None:
    cache = cache_factory(tls_redis.url, **tls_files(tls_redis))
    cache.set("Encrypted ____.", ["in transit"], "https://v.example/tls.mp4", permanent=True)
    assert cache.get("Encrypted ____.", ["in transit"]) == "https://v.example/tls.mp4"
    stats = cache.get_stats()
    assert stats["cache_type"] == "redis" and stats["redis_url"].startswith("rediss://:***@")
    with tls_redis.client() as plain:  # the test's own look, on the server's plain port
        assert plain.get(key_for("Encrypted ____.", ["in transit"])) is not None


def test_wrong_ca_gives_a_clear_error_and_the_memory_fallback(
        tls_redis: TlsRedis, cache_factory: CacheFactory) -> None:
    cache = cache_factory(tls_redis.url, cache_near_enabled=False,
                          **tls_files(tls_redis, ca=tls_redis.wrong_ca[0]))
    cache.set("Untrusted ____.", ["server"], "https://v.example/w.mp4", permanent=True)
    assert cache.get("Untrusted ____.", ["server"]) == "https://v.example/w.mp4"
    stats = cache.get_stats()
    assert stats["cache_type"] == "memory" and stats["pending_replay"] == 1
    assert "CERTIFICATE_VERIFY_FAILED" in str(stats["last_error"])
    assert PASSWORD not in str(stats)


def test_without_a_client_certificate_the_server_refuses(
        tls_redis: TlsRedis, cache_factory: CacheFactory) -> None:
    cache = cache_factory(tls_redis.url, cache_near_enabled=False,
                          redis_tls_ca_file=tls_redis.ca[0])
    assert not cache.redis_reachable()
    assert PASSWORD not in str(cache.get_stats())


def test_doctor_over_tls(tls_redis: TlsRedis, tmp_path: Path) -> None:
    settings = make_settings(tmp_path, tls_redis.url, **tls_files(tls_redis))
    lines = [f"{check.status} {check.text}" for check in diagnose(settings)]
    assert "ok topology: one server over TLS" in lines[1]
    assert not any(line.startswith("fail") for line in lines), lines
    assert PASSWORD not in "\n".join(lines)
