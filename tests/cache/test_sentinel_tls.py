"""Sentinel over TLS (`rediss+sentinel://` + REDIS_TLS_*): a real master, replica and sentinel
that speak TLS only, to us, to each other (replication) and the sentinel to the servers.

On it: the video cache (through a `SENTINEL FAILOVER`, losing no acknowledged permanent entry),
the game state, the rate limits, the Socket.IO manager and the doctor; and a wrong CA, which must
fail clearly and without the password, into the memory fallback.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import redis.asyncio as aioredis
from pydantic import ValidationError
from redis.backoff import NoBackoff
from redis.retry import Retry

from app.cache.connection import async_client
from app.cache.doctor import diagnose
from app.cache.entry import CacheEntry
from app.cache.keys import key_for
from app.core.config import Settings
from app.core.ratelimit import KEY_PREFIX, RateLimits
from app.core.redis_url import parse_multi_host, uses_tls
from app.main import create_sio
from app.sockets.manager import GameRedisManager
from app.state.redis_store import RedisRoomStore, room_key
from tests.cache.conftest import CacheFactory, assert_publish_reaches, make_settings
from tests.cache.test_sentinel import _write_stream
from tests.state import test_book as book_tests
from tests.support.topologies import SentinelTopology, wait_for

pytestmark = pytest.mark.slow
PASSWORD = "tls-s3ntinel-secret"
# Room for TLS handshakes on a loaded CI machine (fail-fast is tested elsewhere); a wrong CA
# still fails at once.
PATIENT = {"redis_connect_timeout": 2.0, "redis_socket_timeout": 2.0}


@pytest.fixture(scope="module")
def topology(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentinelTopology]:
    topo = SentinelTopology(tmp_path_factory.mktemp("tls-sentinel"), password=PASSWORD, tls=True)
    topo.start()
    yield topo
    topo.stop()


def tls_settings(topo: SentinelTopology, tmp_path: Path, ca: Path | None = None,
                 **overrides: object) -> Settings:
    assert topo.tls is not None
    return make_settings(tmp_path, topo.url(), **topo.tls.settings(ca),
                         **{**PATIENT, **overrides})


def master_client(topo: SentinelTopology) -> redis.Redis:
    assert topo.tls is not None
    host, port = topo.master_address()
    return redis.Redis(host=host, port=port, password=PASSWORD, decode_responses=True,
                       socket_timeout=2, **topo.tls.client_options())


def test_the_url_form_and_its_settings(topology: SentinelTopology, tmp_path: Path) -> None:
    url = topology.url()
    assert url.startswith(f"rediss+sentinel://:{PASSWORD}@127.0.0.1:")
    address = parse_multi_host(url)
    assert address.topology == "sentinel" and address.tls and uses_tls(url)
    assert (address.service, address.db) == ("mymaster", 0)
    settings = tls_settings(topology, tmp_path)
    assert settings.redis_url == url
    with pytest.raises(ValidationError, match="rediss:// URLs only"):  # TLS files need TLS
        make_settings(tmp_path, url.replace("rediss+", "redis+"),
                      redis_tls_ca_file=settings.redis_tls_ca_file)


def test_a_plain_client_is_refused(topology: SentinelTopology) -> None:
    """No plain port and no plain talk on the TLS ones: what a redis+sentinel:// URL would do."""
    for port in (topology.sentinel_port, topology.master.port):
        with pytest.raises(redis.exceptions.ConnectionError), redis.Redis(
                host="127.0.0.1", port=port, socket_timeout=1,
                retry=Retry(NoBackoff(), 0)) as plain:
            plain.ping()


def test_the_cache_through_a_failover(topology: SentinelTopology,
                                      cache_factory: CacheFactory) -> None:
    """Permanent writes before, during and after `SENTINEL FAILOVER`: every acknowledged one is
    on the new master, and the cache is back on Redis with nothing held."""
    assert topology.tls is not None
    cache = cache_factory(topology.url(), **topology.tls.settings(), **PATIENT,
                          cache_probe_max_interval=0.2)
    assert cache.redis_reachable()
    old_port = topology.master.port
    urls, _ = _write_stream(cache, topology)
    assert topology.master_address()[1] != old_port
    wait_for(lambda: (cache.core.redis_usable and cache.core.replicas.held == 0
                      and cache.core.pending_writes == 0), 5,
             "the cache back on Redis with nothing held")
    with master_client(topology) as master:
        stored = master.mget([key_for(f"Stream {i} ____.", ["failover"])
                              for i in range(len(urls))])
    assert [CacheEntry.decode(raw).video_url if raw else None for raw in stored] == urls
    stats = cache.get_stats()
    assert stats["cache_type"] == "redis"
    assert stats["redis_url"].startswith("rediss+sentinel://:***@127.0.0.1:")
    assert PASSWORD not in str(stats)


async def test_game_state_rate_limits_and_socketio(topology: SentinelTopology,
                                                   tmp_path: Path) -> None:
    settings = tls_settings(topology, tmp_path, socketio_channel="tls-sentinel")
    client = async_client(settings)  # what app/state/wiring.py uses
    await book_tests.test_a_stale_copy_loses_the_race_and_runs_again_on_the_fresh_one(
        RedisRoomStore(client))
    await client.aclose()

    first, second = RateLimits.from_settings(settings), RateLimits.from_settings(settings)
    await first.start()
    await second.start()
    assert first.backend == "redis" and second.backend == "redis"
    assert await first.hit("join", "1.2.3.4", "2/minute")
    assert await second.hit("join", "1.2.3.4", "2/minute")
    assert not await first.hit("join", "1.2.3.4", "2/minute")  # counted across instances
    await first.aclose()
    await second.aclose()
    with master_client(topology) as master:
        assert master.exists(room_key("ACDEF"))  # the room's hash, on the master
        assert master.keys(f"{KEY_PREFIX}*")  # the counts too, not in memory

    # python-socketio has no TLS Sentinel scheme: it gets redis+sentinel:// and TLS as options,
    # for the master and for the sentinels.
    manager = create_sio(settings).manager
    assert isinstance(manager, GameRedisManager)
    assert manager.redis_url == topology.url().replace("rediss+", "redis+", 1)
    assert manager.redis_options["ssl"] is True
    assert manager.redis_options["sentinel_kwargs"]["ssl_ca_certs"] == \
        str(settings.redis_tls_ca_file)
    assert manager.masked_url.startswith("rediss+sentinel://:***@")
    assert topology.tls is not None
    host, port = topology.master_address()
    subscriber = aioredis.Redis(host=host, port=port, password=PASSWORD,
                                **topology.tls.client_options())
    await assert_publish_reaches(manager, subscriber, "tls-sentinel")


def test_doctor_reports_the_tls_sentinel_topology(topology: SentinelTopology,
                                                  tmp_path: Path) -> None:
    lines = [f"{check.status} {check.text}"
             for check in diagnose(tls_settings(topology, tmp_path))]
    text = "\n".join(lines)
    host, port = topology.master_address()
    assert "ok topology: Sentinel over TLS, service mymaster, 1 sentinel(s) listed" in lines, text
    assert f"master {host}:{port} (master)" in text
    assert not any(line.startswith("fail") for line in lines), text
    assert PASSWORD not in text


async def test_a_wrong_ca_fails_clearly_into_memory(topology: SentinelTopology,
                                                    cache_factory: CacheFactory,
                                                    tmp_path: Path) -> None:
    assert topology.tls is not None
    wrong = topology.tls.wrong_ca[0]
    cache = cache_factory(topology.url(), cache_near_enabled=False,
                          **topology.tls.settings(ca=wrong))
    cache.set("Untrusted ____.", ["sentinel"], "https://v.example/w.mp4", permanent=True)
    assert cache.get("Untrusted ____.", ["sentinel"]) == "https://v.example/w.mp4"
    stats = cache.get_stats()
    assert stats["cache_type"] == "memory" and stats["pending_replay"] == 1
    assert "CERTIFICATE_VERIFY_FAILED" in str(stats["last_error"]), stats["last_error"]
    assert PASSWORD not in str(stats)
    with master_client(topology) as master:
        assert master.get(key_for("Untrusted ____.", ["sentinel"])) is None

    limits = RateLimits.from_settings(tls_settings(topology, tmp_path, ca=wrong))
    await limits.start()
    assert limits.backend == "memory"  # counted in memory, never "no limit"
    await limits.aclose()
