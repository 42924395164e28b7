"""The video cache on Redis Cluster (`redis+cluster://`): three real primaries on free ports.

The same guarantees as on one server: fallback and fail-fast, replay of outage writes, the near
cache (tracking on every primary), `get_many` across slots (one MGET per slot), Lua locks on
single keys, stats with the password masked, and the spec's snippets unchanged.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
import redis
from redis.crc import key_slot

from app.cache.doctor import diagnose
from app.cache.entry import CacheEntry
from app.cache.keys import key_for
from app.cache.lock import RedisLock
from app.core.config import Settings
from app.services.video_cache import VideoCache
from tests.cache.conftest import CacheFactory, make_settings
from tests.support.redis_server import free_port
from tests.support.topologies import ClusterTopology, wait_for

pytestmark = pytest.mark.slow
PASSWORD = "c1uster-secret"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterTopology]:
    topo = ClusterTopology(tmp_path_factory.mktemp("cluster"), password=PASSWORD)
    topo.start()
    yield topo
    topo.stop()


@pytest.fixture(autouse=True)
def _empty(cluster: ClusterTopology) -> None:
    for server in cluster.primaries():
        with server.client() as client:
            client.flushall()


def mget_calls(cluster: ClusterTopology) -> int:
    total = 0
    for server in cluster.primaries():
        with server.client() as client:
            total += int(client.info("commandstats").get("cmdstat_mget", {}).get("calls", 0))
    return total


def stored(cluster: ClusterTopology, key: str) -> str | None:
    with cluster.server_for(key).client() as client:
        return client.get(key)  # type: ignore[return-value]


def test_the_spec_snippets_run_unchanged_on_a_cluster(cluster: ClusterTopology,
                                                      cache_factory: CacheFactory) -> None:
    cache = cache_factory(cluster.url())
    cache.set("What's the secret to happiness?", ["Cats with opposable thumbs"],
              "https://video.url/abc123.mp4", permanent=True)
    assert cache.get("What's the secret to happiness?", ["Cats with opposable thumbs"]) \
        == "https://video.url/abc123.mp4"
    cache.set("Temporary ____.", ["entry"], "https://v.example/t.mp4")
    raw = stored(cluster, key_for("What's the secret to happiness?",
                                  ["Cats with opposable thumbs"]))
    assert raw is not None and CacheEntry.decode(raw).permanent
    temp_key = key_for("Temporary ____.", ["entry"])
    with cluster.server_for(temp_key).client() as client:
        assert client.ttl(temp_key) > 0
    stats = cache.get_stats()
    assert stats["cache_type"] == "redis" and stats["total_entries"] == 2
    assert PASSWORD not in str(stats) and stats["redis_url"].startswith("redis+cluster://:***@")
    assert cache.delete("Temporary ____.", ["entry"]) is True
    assert cache.get("Temporary ____.", ["entry"]) is None


def test_get_many_sends_one_mget_per_slot(cluster: ClusterTopology,
                                          cache_factory: CacheFactory) -> None:
    cache = cache_factory(cluster.url(), cache_near_enabled=False)
    combos = [(f"Card {i} ____.", ["many"]) for i in range(60)]
    for i, combo in enumerate(combos[:40]):
        cache.set(*combo, f"https://v.example/{i}.mp4")
    keys = [key_for(*combo) for combo in combos]
    slots = {key_slot(key.encode()) for key in keys}
    nodes = {cluster.server_for(key).port for key in keys}
    assert len(nodes) == 3  # the keys really are spread over every primary
    # Why: one MGET fails with CROSSSLOT even for two slots of the same node.
    node = cluster.server_for(keys[0])
    same_node = [key for key in keys if cluster.server_for(key) is node][:2]
    with pytest.raises(redis.exceptions.ClusterCrossSlotError), node.client() as client:
        client.mget(same_node)
    before = mget_calls(cluster)
    expected = [f"https://v.example/{i}.mp4" for i in range(40)] + [None] * 20
    assert cache.get_many(combos) == expected
    assert mget_calls(cluster) - before == len(slots)


def test_get_many_with_a_stale_slot_map_follows_moved(cluster: ClusterTopology,
                                                      cache_factory: CacheFactory) -> None:
    """The hand-pipelined MGETs (app/cache/cluster_mget.py) meet MOVED when the client's slot
    map is wrong, and redo the read through redis-py, which follows it: same answers."""
    cache = cache_factory(cluster.url(), cache_near_enabled=False)
    combos = [(f"Stale {i} ____.", ["map"]) for i in range(30)]
    for i, combo in enumerate(combos[:20]):
        cache.set(*combo, f"https://v.example/s{i}.mp4")
    expected = [f"https://v.example/s{i}.mp4" for i in range(20)] + [None] * 10

    def scramble(manager: object) -> None:
        # Every slot of the first key now points at a primary that does not own it.
        slots = manager.slots_cache  # type: ignore[attr-defined]
        slot = key_slot(key_for(*combos[0]).encode())
        owner = slots[slot][0]
        slots[slot] = [next(nodes[0] for nodes in slots.values() if nodes[0].name != owner.name)]

    scramble(cache._sync().nodes_manager)  # type: ignore[attr-defined]
    assert cache.get_many(combos) == expected
    assert cache.get_stats()["cache_type"] == "redis"

    async def main() -> list[str | None]:
        await cache.astart()
        assert await cache.aget_many(combos) == expected  # the slot map is read here
        scramble(cache._async().nodes_manager)  # type: ignore[attr-defined]
        try:
            return await cache.aget_many(combos)
        finally:
            assert cache.core.redis_usable
            await cache.aclose()

    assert asyncio.run(main()) == expected


async def test_async_calls_batch_across_slots_and_locks_work(cluster: ClusterTopology,
                                                             cache_factory: CacheFactory) -> None:
    # Generous timeouts: this test is about batching, not fail-fast, and a loaded CI machine
    # once took longer than the default 0.25 s to connect (the cache then went to memory).
    cache = cache_factory(cluster.url(), cache_near_enabled=False, redis_socket_timeout=5.0,
                          redis_connect_timeout=5.0)
    await cache.astart()
    try:
        combos = [(f"Async {i} ____.", ["cluster"]) for i in range(50)]
        # Concurrent writes and reads: the batcher pipelines them across the three nodes.
        await asyncio.gather(*(cache.aset(*combo, f"https://v.example/a{i}.mp4",
                                          permanent=i % 2 == 0)
                               for i, combo in enumerate(combos)))
        got = await asyncio.gather(*(cache.aget(*combo) for combo in combos))
        assert got == [f"https://v.example/a{i}.mp4" for i in range(50)]
        assert await cache.aget_many(combos + [("Missing ____.", ["x"])]) == [*got, None]
        assert cache.get_stats()["cache_type"] == "redis"
        assert cache._batch().round_trips >= 1  # some calls really shared a round trip
        lock = RedisLock(cache.shared, "punchline:test-lock", ttl=5)
        rival = RedisLock(cache.shared, "punchline:test-lock", ttl=5)
        assert await lock.acquire()
        assert not await rival.acquire()
        await lock.release()  # the compare-and-delete Lua script, on the key's primary
        assert await rival.acquire()
        await rival.release()
    finally:
        await cache.aclose()  # in this loop: a failure must not leak its sockets into the next


def test_near_cache_is_invalidated_by_every_primary(cluster: ClusterTopology,
                                                    cache_factory: CacheFactory) -> None:
    cache = cache_factory(cluster.url())
    combos: dict[int, tuple[str, list[str]]] = {}
    for i in range(200):  # one key on each primary
        combo = (f"Near {i} ____.", ["cluster"])
        combos.setdefault(cluster.server_for(key_for(*combo)).port, combo)
        if len(combos) == 3:
            break
    for combo in combos.values():
        cache.set(*combo, "https://v.example/old.mp4")
    wait_for(lambda: cache.core.near_live, 5, "client tracking on every primary")
    for port, combo in combos.items():
        key = key_for(*combo)
        wait_for(lambda c=combo: cache.get(*c) and cache.core.memory.get(
            key_for(*c), fresh_only=True) is not None, 5, "a near-cache fill")
        entry = CacheEntry.new(f"https://v.example/new-{port}.mp4", permanent=False)
        with cluster.server_for(key).client() as client:  # another writer, on that primary
            client.set(key, entry.encode(), ex=60)
        wait_for(lambda c=combo, p=port: cache.get(*c) == f"https://v.example/new-{p}.mp4", 5,
                 f"the invalidation from the primary on port {port}")


def test_a_frozen_cluster_falls_back_and_replays(cluster: ClusterTopology,
                                                 cache_factory: CacheFactory) -> None:
    cache = cache_factory(cluster.url(), cache_probe_max_interval=0.2, redis_wait_ms=0)
    cache.set("Before ____.", ["freeze"], "https://v.example/b.mp4", permanent=True)
    for server in cluster.primaries():
        server.freeze()
    try:
        cache.set("During ____.", ["freeze"], "https://v.example/d.mp4", permanent=True)
        assert cache.get("During ____.", ["freeze"]) == "https://v.example/d.mp4"
        stats = cache.get_stats()
        assert stats["cache_type"] == "memory" and stats["pending_replay"] == 1
        assert PASSWORD not in str(stats)
    finally:
        for server in cluster.servers:
            server.thaw()
    cluster.wait_ok(20)
    wait_for(lambda: cache.core.redis_usable and cache.core.pending_writes == 0, 10,
             "the cache back on the cluster with the journal replayed")
    raw = stored(cluster, key_for("During ____.", ["freeze"]))
    assert raw is not None and CacheEntry.decode(raw).video_url == "https://v.example/d.mp4"
    assert cache.get_stats()["replayed"] >= 1


def test_unreachable_startup_nodes_fall_back_to_memory(cache_factory: CacheFactory) -> None:
    url = f"redis+cluster://:{PASSWORD}@127.0.0.1:{free_port()},127.0.0.1:{free_port()}"
    cache = cache_factory(url, cache_near_enabled=False)
    cache.set("Nobody ____.", ["home"], "https://v.example/n.mp4", permanent=True)
    assert cache.get("Nobody ____.", ["home"]) == "https://v.example/n.mp4"
    stats = cache.get_stats()
    assert stats["cache_type"] == "memory" and stats["pending_replay"] == 1
    assert "cannot be connected" in str(stats["last_error"]) and PASSWORD not in str(stats)


def test_doctor_reports_every_primary(cluster: ClusterTopology, tmp_path: object) -> None:
    settings: Settings = make_settings(tmp_path, cluster.url())  # type: ignore[arg-type]
    checks = diagnose(settings)
    text = "\n".join(f"{c.status} {c.text}" for c in checks)
    assert "Cluster" in text and PASSWORD not in text
    for server in cluster.primaries():
        assert f"127.0.0.1:{server.port}" in text
    assert "cluster_state:ok" in text


def test_cluster_url_with_a_database_is_refused(cluster: ClusterTopology) -> None:
    with pytest.raises(ValueError, match="only database 0"):
        Settings(_env_file=None, redis_url=cluster.url(), redis_db=3)
    assert isinstance(VideoCache(Settings(_env_file=None, redis_url=cluster.url())), VideoCache)
