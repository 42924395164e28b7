"""The video cache on Redis Sentinel (`redis+sentinel://`): real master, replica and sentinel.

The same guarantees as on one server: fallback and fail-fast, replay of outage writes, the near
cache, locks, stats; and a failover loses no acknowledged permanent entry (WAIT, see
app/cache/replication.py).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from app.cache.doctor import diagnose
from app.cache.entry import CacheEntry
from app.cache.keys import key_for
from app.cache.lock import RedisLock
from app.services.video_cache import VideoCache
from tests.cache.conftest import CacheFactory, make_settings
from tests.support.redis_server import RedisServer, free_port
from tests.support.topologies import SentinelTopology, wait_for

pytestmark = pytest.mark.slow
PASSWORD = "s3ntinel-secret"


@pytest.fixture(scope="module")
def topology(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentinelTopology]:
    """Shared by the tests that do not change roles; the others start their own."""
    topo = SentinelTopology(tmp_path_factory.mktemp("sentinel"), password=PASSWORD)
    topo.start()
    yield topo
    topo.stop()


@pytest.fixture
def own_topology(tmp_path: Path) -> Iterator[SentinelTopology]:
    topo = SentinelTopology(tmp_path / "own-sentinel")
    topo.start()
    yield topo
    topo.stop()


def master_client(topo: SentinelTopology) -> redis.Redis:
    host, port = topo.master_address()
    return redis.Redis(host=host, port=port, password=topo.password, decode_responses=True,
                       socket_timeout=2)


def test_the_cache_runs_on_the_sentinel_master(topology: SentinelTopology,
                                               cache_factory: CacheFactory) -> None:
    cache = cache_factory(topology.url())
    cache.set("Sentinel ____.", ["a master"], "https://v.example/s.mp4", permanent=True)
    cache.set("Temporary ____.", ["entry"], "https://v.example/t.mp4")
    assert cache.get("Sentinel ____.", ["a master"]) == "https://v.example/s.mp4"
    assert cache.get_many([("Sentinel ____.", ["a master"]), ("Temporary ____.", ["entry"]),
                           ("Missing ____.", ["x"])]) == ["https://v.example/s.mp4",
                                                          "https://v.example/t.mp4", None]
    with master_client(topology) as master:
        stored = master.get(key_for("Sentinel ____.", ["a master"]))
        assert stored is not None and CacheEntry.decode(stored).permanent
        assert master.ttl(key_for("Temporary ____.", ["entry"])) > 0
    stats = cache.get_stats()
    assert stats["cache_type"] == "redis" and stats["total_entries"] == 2
    assert PASSWORD not in str(stats) and stats["redis_url"].startswith("redis+sentinel://")
    assert cache.delete("Temporary ____.", ["entry"]) is True
    # The master has a replica: the permanent write waited for it (on a busy machine the WAIT
    # may run out first: then it is held and re-written until the replica confirms it).
    replicas = cache.core.replicas
    assert replicas.confirmed + replicas.unconfirmed >= 1
    wait_for(lambda: replicas.confirmed >= 1 and replicas.held == 0, 5, "a replica's confirmation")


async def test_async_api_and_locks_on_sentinel(topology: SentinelTopology,
                                               cache_factory: CacheFactory) -> None:
    cache = cache_factory(topology.url())
    await cache.astart()
    await cache.aset("Async ____.", ["sentinel"], "https://v.example/a.mp4", permanent=True)
    assert await cache.aget("Async ____.", ["sentinel"]) == "https://v.example/a.mp4"
    lock = RedisLock(cache.shared, "punchline:test-lock", ttl=5)
    rival = RedisLock(cache.shared, "punchline:test-lock", ttl=5)
    assert await lock.acquire()
    assert not await rival.acquire()  # SET NX on the master
    await lock.release()  # the compare-and-delete Lua script
    assert await rival.acquire()
    await rival.release()
    await cache.aclose()


def test_near_cache_is_invalidated_through_the_master(topology: SentinelTopology,
                                                      cache_factory: CacheFactory) -> None:
    cache = cache_factory(topology.url())
    cache.set("Near ____.", ["cache"], "https://v.example/old.mp4")
    wait_for(lambda: cache.core.near_live, 5, "client tracking on the master")
    assert cache.get("Near ____.", ["cache"]) == "https://v.example/old.mp4"
    entry = CacheEntry.new("https://v.example/new.mp4", permanent=False)
    with master_client(topology) as master:  # another writer, straight to the master
        master.set(key_for("Near ____.", ["cache"]), entry.encode(), ex=60)
    wait_for(lambda: cache.get("Near ____.", ["cache"]) == "https://v.example/new.mp4", 5,
             "the invalidation to reach the near cache")


def test_unreachable_sentinels_fall_back_to_memory_without_the_password(
        cache_factory: CacheFactory) -> None:
    url = f"redis+sentinel://:{PASSWORD}@127.0.0.1:{free_port()},127.0.0.1:{free_port()}/0/x"
    cache = cache_factory(url, cache_near_enabled=False)
    started = time.monotonic()
    cache.set("Nobody ____.", ["home"], "https://v.example/n.mp4", permanent=True)
    assert time.monotonic() - started < 2  # fail-fast: no retries against dead sentinels
    assert cache.get("Nobody ____.", ["home"]) == "https://v.example/n.mp4"
    stats = cache.get_stats()
    assert stats["cache_type"] == "memory" and stats["pending_replay"] == 1
    assert "No master found" in str(stats["last_error"]) and PASSWORD not in str(stats)


def test_a_killed_master_is_replaced_and_outage_writes_are_replayed(
        own_topology: SentinelTopology, cache_factory: CacheFactory) -> None:
    cache = cache_factory(own_topology.url(), cache_probe_max_interval=0.2)
    cache.set("Before ____.", ["the crash"], "https://v.example/b.mp4", permanent=True)
    # WAIT: on the replica before the master dies, or held and re-written on the next master.
    assert cache.core.replicas.confirmed + cache.core.replicas.held == 1
    old_master = own_topology.master
    old_master.stop()
    # Until the sentinel promotes the replica (about 2 s), writes go to the journal.
    cache.set("During ____.", ["the outage"], "https://v.example/d.mp4", permanent=True)
    assert cache.get_stats()["cache_type"] == "memory"
    wait_for(lambda: own_topology.master_address()[1] != old_master.port, 15,
             "the sentinel to promote the replica")
    wait_for(lambda: cache.core.redis_usable and cache.core.pending_writes == 0, 5,
             "the cache back on Redis with the journal replayed")
    with master_client(own_topology) as master:
        assert master.get(key_for("Before ____.", ["the crash"])) is not None
        assert master.get(key_for("During ____.", ["the outage"])) is not None
    assert cache.get_stats()["replayed"] >= 1


def _write_stream(cache: VideoCache, topo: SentinelTopology) -> tuple[list[str], float]:
    """Permanent writes before, during and after `SENTINEL FAILOVER`; returns (urls, start)."""
    old_port = topo.master.port
    urls: list[str] = []
    failed_over_at: float | None = None
    started = time.monotonic()
    deadline = started + 30
    while time.monotonic() < deadline:
        index = len(urls)
        url = f"https://v.example/stream-{index}.mp4"
        cache.set(f"Stream {index} ____.", ["failover"], url, permanent=True)
        urls.append(url)  # set() returned: the write is acknowledged
        if index == 300:
            topo.failover()
            started = time.monotonic()
        if index > 300 and index % 50 == 0 and failed_over_at is None:
            if topo.master_address()[1] != old_port:
                failed_over_at = time.monotonic()
        # Keep writing until the old master has rejoined as a replica of the new one.
        if failed_over_at is not None and index % 50 == 0:
            with topo.server_at(old_port).client() as old:
                if old.info("replication").get("master_link_status") == "up":
                    return urls, started
    raise AssertionError("the failover did not complete in 30 s")


def test_failover_loses_no_acknowledged_permanent_entry(own_topology: SentinelTopology,
                                                        cache_factory: CacheFactory) -> None:
    cache = cache_factory(own_topology.url(), cache_probe_max_interval=0.2)
    assert cache.redis_reachable()
    urls, _ = _write_stream(cache, own_topology)
    # Reads are back on Redis, the journal replayed and every held write confirmed, in 5 s.
    wait_for(lambda: (cache.core.redis_usable and cache.core.replicas.held == 0
                      and cache.core.pending_writes == 0), 5,
             "the cache back on Redis with nothing held")
    with master_client(own_topology) as master:
        keys = [key_for(f"Stream {i} ____.", ["failover"]) for i in range(len(urls))]
        stored = master.mget(keys)
    missing = [i for i, raw in enumerate(stored) if raw is None]
    replicas = cache.core.replicas  # how many were held, and dropped past MAX_HELD (the cause)
    assert not missing, (f"{len(missing)} of {len(urls)} acknowledged entries lost: "
                         f"{missing[:10]} (held {replicas.unconfirmed}, "
                         f"dropped {replicas.dropped})")
    assert replicas.dropped == 0
    assert [CacheEntry.decode(raw).video_url for raw in stored if raw is not None] == urls
    assert cache.get(f"Stream {len(urls) - 1} ____.", ["failover"]) == urls[-1]
    assert cache.get_stats()["cache_type"] == "redis"


def test_doctor_reports_the_sentinel_topology(topology: SentinelTopology, tmp_path: Path) -> None:
    settings = make_settings(tmp_path, topology.url())
    lines = [f"{check.status} {check.text}" for check in diagnose(settings)]
    text = "\n".join(lines)
    host, port = topology.master_address()
    replica = topology.replicas[0].port
    assert "ok topology: Sentinel, service mymaster" in text
    assert f"master {host}:{port} (master)" in text
    assert f"replica 127.0.0.1:{replica} (slave, link ok)" in text
    assert f"ok primary: 1 replica(s) connected: 127.0.0.1:{replica} (online" in text
    assert "permanent writes wait for 1 replica" in text
    assert f"maxmemory-policy noeviction [primary {host}:{port}]" in text
    assert not any(line.startswith("fail") for line in lines), lines
    assert PASSWORD not in text


@pytest.fixture
def master_and_replica(tmp_path: Path) -> Iterator[tuple[RedisServer, RedisServer]]:
    """A master and its replica, no sentinel: the cache talks to the master (redis://)."""
    master = RedisServer(tmp_path / "master")
    master.start()
    replica = RedisServer(tmp_path / "replica",
                          extra_args=("--replicaof", "127.0.0.1", str(master.port)))
    replica.start()
    try:
        with master.client() as look:
            wait_for(lambda: int(look.info("replication")["connected_slaves"]) == 1, 10,
                     "the master to count its replica")
            look.set("first-write", "1")  # the master streams to a replica once it has ACKed
            wait_for(lambda: look.wait(1, 100) == 1, 10, "the replica's first ACK")
        yield master, replica
    finally:
        replica.stop()
        master.stop()


def test_replayed_permanent_writes_wait_for_the_replica(
        master_and_replica: tuple[RedisServer, RedisServer], cache_factory: CacheFactory) -> None:
    """Writes journaled during an outage are replayed without WAIT (one script per key): they
    are then held until the replica confirms them, like any unconfirmed permanent write."""
    master, replica = master_and_replica
    cache = cache_factory(master.url, cache_probe_max_interval=0.2)
    cache.set("Before ____.", ["the outage"], "https://v.example/b.mp4", permanent=True)
    master.freeze()
    combos = [(f"Journaled {i} ____.", ["outage"]) for i in range(5)]
    for i, combo in enumerate(combos):
        cache.set(*combo, f"https://v.example/j{i}.mp4", permanent=True)
    assert cache.get_stats()["cache_type"] == "memory"
    replica.freeze()  # the replay lands on the master, and no replica confirms it
    master.thaw()
    wait_for(lambda: cache.core.redis_usable and cache.core.pending_writes == 0, 5,
             "the journal replayed")
    keys = {key_for(*combo) for combo in combos}
    assert keys <= set(cache.core.replicas.held_keys())
    replica.thaw()
    wait_for(lambda: not cache.core.replicas.held, 5, "the replica's confirmation")
    with replica.client() as on_replica:
        assert all(on_replica.get(key) is not None for key in keys)


def test_a_held_write_stays_readable_and_a_deleted_one_is_not_brought_back(
        master_and_replica: tuple[RedisServer, RedisServer], cache_factory: CacheFactory) -> None:
    """No replica confirms (frozen): the writes are held. One is lost from Redis (as in a
    failover): reads still answer it. One is deleted: the re-drive must not write it again."""
    master, replica = master_and_replica
    cache = cache_factory(master.url, cache_near_enabled=False, cache_probe_max_interval=0.2)
    replica.freeze()
    cache.set("Lost ____.", ["in the failover"], "https://v.example/lost.mp4", permanent=True)
    cache.set("Deleted ____.", ["by a player"], "https://v.example/del.mp4", permanent=True)
    lost, deleted = key_for("Lost ____.", ["in the failover"]), key_for("Deleted ____.",
                                                                         ["by a player"])
    assert {lost, deleted} <= set(cache.core.replicas.held_keys())
    with master.client() as on_master:
        on_master.delete(lost)
    cache.core.memory.delete(lost)  # no local copy either: only the hold knows it
    assert cache.get("Lost ____.", ["in the failover"]) == "https://v.example/lost.mp4"
    assert cache.get_many([("Lost ____.", ["in the failover"])]) == ["https://v.example/lost.mp4"]
    assert cache.delete("Deleted ____.", ["by a player"]) is True
    replica.thaw()
    wait_for(lambda: not cache.core.replicas.held, 5, "the replica's confirmation")
    with replica.client() as on_replica:
        assert on_replica.get(lost) is not None  # re-driven onto the master, then replicated
        assert on_replica.get(deleted) is None
    assert cache.get("Deleted ____.", ["by a player"]) is None
