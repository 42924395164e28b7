"""Redis Cluster over TLS (`rediss+cluster://` + REDIS_TLS_*): a real TLS-only 3-primary cluster.

The nodes have no plain port (`--port 0`); the cluster bus and replication speak TLS too, and
every client must show a certificate (redis-server's `tls-auth-clients yes`). Certificates are
made by the test with openssl. On it: the video cache, the game state, the rate limits, the
Socket.IO manager and the doctor; and a wrong CA, which must fail clearly and without the
password, into the memory fallback.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import redis.asyncio as aioredis
from pydantic import ValidationError
from redis.backoff import NoBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.retry import Retry

from app.cache.connection import async_client, is_cluster, tls_options
from app.cache.doctor import diagnose
from app.cache.keys import key_for
from app.core.config import Settings
from app.core.ratelimit import KEY_PREFIX, RateLimits, limits_url
from app.core.redis_url import parse_multi_host, uses_tls
from app.main import create_sio
from app.services.video_cache import VideoCache
from app.sockets.manager import GameRedisManager, pubsub_url
from app.state.redis_store import RedisRoomStore, room_key
from tests.cache.conftest import CacheFactory, assert_publish_reaches, make_settings
from tests.state import test_book as book_tests
from tests.support.topologies import ClusterTopology, TlsOnlyRedisServer

pytestmark = pytest.mark.slow
PASSWORD = "tls-c1uster-secret"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterTopology]:
    topo = ClusterTopology(tmp_path_factory.mktemp("tls-cluster"), password=PASSWORD, tls=True)
    topo.start()
    yield topo
    topo.stop()


# Timeouts with room for TLS handshakes on a loaded CI machine (the default 0.25 s is about
# fail-fast, tested elsewhere); a wrong CA still fails at once.
PATIENT = {"redis_connect_timeout": 2.0, "redis_socket_timeout": 2.0}


def tls_settings(cluster: ClusterTopology, tmp_path: Path, ca: Path | None = None,
                 **overrides: object) -> Settings:
    assert cluster.tls is not None
    return make_settings(tmp_path, cluster.url(), **cluster.tls.settings(ca),
                         **{**PATIENT, **overrides})


@pytest.fixture(scope="module")
def peek(cluster: ClusterTopology) -> Iterator[RedisCluster]:
    """The test's own look into the cluster, over TLS (one client: each TLS connect costs)."""
    assert cluster.tls is not None
    client = RedisCluster(startup_nodes=[ClusterNode("127.0.0.1", cluster.ports[0])],
                          password=PASSWORD, **cluster.tls.client_options())
    yield client
    client.close()


@pytest.fixture(autouse=True)
def _empty(peek: RedisCluster) -> None:
    peek.flushall(target_nodes=RedisCluster.PRIMARIES)


def stored_on(peek: RedisCluster, key: str) -> tuple[int, str | None]:
    """(port of the primary serving `key`, its raw value)."""
    return peek.get_node_from_key(key).port, peek.get(key)  # type: ignore[return-value]


def test_the_url_form_and_its_settings(cluster: ClusterTopology, tmp_path: Path) -> None:
    url = cluster.url()
    assert url.startswith(f"rediss+cluster://:{PASSWORD}@127.0.0.1:")
    address = parse_multi_host(url)
    assert address.topology == "cluster" and address.tls and uses_tls(url)
    assert not uses_tls(url.replace("rediss+", "redis+"))
    settings = tls_settings(cluster, tmp_path)
    assert tls_options(settings)["ssl_ca_certs"] == str(settings.redis_tls_ca_file)
    with pytest.raises(ValidationError, match="rediss:// URLs only"):  # TLS files need TLS
        make_settings(tmp_path, url.replace("rediss+", "redis+"),
                      redis_tls_ca_file=settings.redis_tls_ca_file)
    with pytest.raises(ValidationError, match="only database 0"):
        make_settings(tmp_path, url, redis_db=2)


def test_video_cache_across_slots(cluster: ClusterTopology, cache_factory: CacheFactory,
                                  peek: RedisCluster) -> None:
    assert cluster.tls is not None
    cache = cache_factory(cluster.url(), **cluster.tls.settings(), **PATIENT)
    combos = [(f"Encrypted {i} ____.", ["in transit"]) for i in range(30)]
    for i, combo in enumerate(combos[:20]):
        cache.set(*combo, f"https://v.example/tls{i}.mp4", permanent=i % 2 == 0)
    assert cache.get(*combos[3]) == "https://v.example/tls3.mp4"
    expected = [f"https://v.example/tls{i}.mp4" for i in range(20)] + [None] * 10
    assert cache.get_many(combos) == expected
    stored = [stored_on(peek, key_for(*combo)) for combo in combos[:20]]
    assert len({port for port, _ in stored}) == 3  # the writes went to every primary
    assert all(raw is not None for _, raw in stored)
    stats = cache.get_stats()
    assert stats["cache_type"] == "redis" and stats["total_entries"] == 20
    assert stats["redis_url"].startswith("rediss+cluster://:***@127.0.0.1:")
    assert PASSWORD not in str(stats)


async def test_async_cache_and_game_state(cluster: ClusterTopology, peek: RedisCluster,
                                          tmp_path: Path) -> None:
    settings = tls_settings(cluster, tmp_path)
    cache = VideoCache(settings)
    await cache.astart()
    await cache.aset("Async ____.", ["over TLS"], "https://v.example/a.mp4")
    assert await cache.aget_many([("Async ____.", ["over TLS"]), ("No ____.", ["such"])]) \
        == ["https://v.example/a.mp4", None]
    assert cache.get_stats()["cache_type"] == "redis"
    await cache.aclose()
    client = async_client(settings)  # what app/state/wiring.py uses
    assert is_cluster(client)
    await book_tests.test_a_stale_copy_loses_the_race_and_runs_again_on_the_fresh_one(
        RedisRoomStore(client))
    await client.aclose()
    assert peek.exists(room_key("ACDEF"))  # the room's hash, in the cluster


async def test_rate_limits_count_on_the_tls_cluster(cluster: ClusterTopology,
                                                    peek: RedisCluster, tmp_path: Path) -> None:
    # `limits` has no TLS Cluster scheme: TLS goes in as redis-py options.
    assert limits_url(cluster.url()) == cluster.url().replace("rediss+", "async+redis+", 1)
    settings = tls_settings(cluster, tmp_path)
    first, second = RateLimits.from_settings(settings), RateLimits.from_settings(settings)
    await first.start()
    await second.start()
    assert first.backend == "redis" and second.backend == "redis"
    assert await first.hit("join", "1.2.3.4", "2/minute")
    assert await second.hit("join", "1.2.3.4", "2/minute")
    assert not await first.hit("join", "1.2.3.4", "2/minute")  # counted across instances
    assert first.backend == "redis"
    # In the cluster, not in either process's memory.
    assert peek.keys(f"{KEY_PREFIX}*", target_nodes=RedisCluster.PRIMARIES)
    await first.aclose()
    await second.aclose()


async def test_rate_limits_on_one_tls_server(cluster: ClusterTopology, tmp_path: Path) -> None:
    """rediss:// too: the storage used to get no REDIS_TLS_* files, so a private CA failed."""
    assert cluster.tls is not None
    server = TlsOnlyRedisServer(tmp_path / "one", cluster.tls, password=PASSWORD)
    server.start()
    try:
        settings = make_settings(tmp_path, f"rediss://:{PASSWORD}@127.0.0.1:{server.port}",
                                 **cluster.tls.settings(), **PATIENT)
        limits = RateLimits.from_settings(settings)
        await limits.start()
        assert limits.backend == "redis"
        assert await limits.hit("rooms", "9.9.9.9", "1/minute")
        assert not await limits.hit("rooms", "9.9.9.9", "1/minute")
        await limits.aclose()
        with server.client() as client:
            assert client.keys(f"{KEY_PREFIX}*")
    finally:
        server.stop()


async def test_socketio_publishes_over_tls(cluster: ClusterTopology, tmp_path: Path) -> None:
    """python-socketio gets `rediss://` on the first node plus the TLS files; a PUBLISH there
    reaches a subscriber on another node (classic Pub/Sub is cluster-wide)."""
    settings = tls_settings(cluster, tmp_path, socketio_channel="tls-test")
    url = pubsub_url(cluster.url())
    assert url == f"rediss://:{PASSWORD}@127.0.0.1:{cluster.ports[0]}"
    manager = create_sio(settings).manager  # the app's wiring: REDIS_TLS_* reach python-socketio
    assert isinstance(manager, GameRedisManager) and manager.redis_url == url
    assert manager.redis_options["ssl_ca_certs"] == str(settings.redis_tls_ca_file)
    assert manager.masked_url == f"rediss://:***@127.0.0.1:{cluster.ports[0]}"
    far = cluster.servers[-1]
    assert cluster.tls is not None
    subscriber = aioredis.Redis(host="127.0.0.1", port=far.port, password=PASSWORD,
                                **cluster.tls.client_options())
    await assert_publish_reaches(manager, subscriber, "tls-test")


def test_doctor_reports_the_nodes(cluster: ClusterTopology, tmp_path: Path) -> None:
    lines = [f"{check.status} {check.text}"
             for check in diagnose(tls_settings(cluster, tmp_path))]
    text = "\n".join(lines)
    assert "ok topology: Cluster over TLS, 2 startup node(s) listed" in lines, text
    for port in cluster.ports:
        assert f"primary 127.0.0.1:{port} (connected" in text
        assert any(line.startswith("ok Redis 7") and line.endswith(f"127.0.0.1:{port}")
                   for line in lines), text
    assert not any(line.startswith("fail") for line in lines), text
    assert PASSWORD not in text


async def test_a_wrong_ca_fails_clearly_into_memory(cluster: ClusterTopology,
                                                    cache_factory: CacheFactory,
                                                    peek: RedisCluster, tmp_path: Path) -> None:
    assert cluster.tls is not None
    wrong = cluster.tls.wrong_ca[0]
    cache = cache_factory(cluster.url(), cache_near_enabled=False,
                          **cluster.tls.settings(ca=wrong))
    cache.set("Untrusted ____.", ["cluster"], "https://v.example/w.mp4", permanent=True)
    assert cache.get("Untrusted ____.", ["cluster"]) == "https://v.example/w.mp4"
    stats = cache.get_stats()
    assert stats["cache_type"] == "memory" and stats["pending_replay"] == 1
    assert "CERTIFICATE_VERIFY_FAILED" in str(stats["last_error"]), stats["last_error"]
    assert PASSWORD not in str(stats)
    assert stored_on(peek, key_for("Untrusted ____.", ["cluster"]))[1] is None

    settings = tls_settings(cluster, tmp_path, ca=wrong)
    limits = RateLimits.from_settings(settings)
    await limits.start()
    assert limits.backend == "memory"  # counted in memory, never "no limit"
    assert [await limits.hit("join", "1.1.1.1", "2/minute") for _ in range(3)] \
        == [True, True, False]
    await limits.aclose()

    lines = [f"{check.status} {check.text}" for check in diagnose(settings)]
    failed = [line for line in lines if line.startswith("fail Redis Cluster unreachable")]
    assert len(failed) == 1 and "CERTIFICATE_VERIFY_FAILED" in failed[0], lines
    assert PASSWORD not in "\n".join(lines)


def test_a_plain_client_is_refused(cluster: ClusterTopology) -> None:
    """No plain port and no plain talk on the TLS one: what a redis+cluster:// URL would do."""
    with pytest.raises(redis.exceptions.ConnectionError), redis.Redis(
            host="127.0.0.1", port=cluster.ports[0], password=PASSWORD, socket_timeout=1,
            retry=Retry(NoBackoff(), 0)) as plain:
        plain.ping()

