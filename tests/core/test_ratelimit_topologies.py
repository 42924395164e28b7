"""RateLimits on Redis Sentinel and Redis Cluster: real servers, counts shared between
instances, failing open to memory when the nodes are gone."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from app.core.config import Settings
from app.core.ratelimit import RateLimits, limits_url
from tests.support.redis_server import free_port
from tests.support.topologies import ClusterTopology, SentinelTopology

pytestmark = pytest.mark.slow
PASSWORD = "l1mits-secret"


@pytest.fixture(scope="module")
def sentinel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentinelTopology]:
    topo = SentinelTopology(tmp_path_factory.mktemp("limits-sentinel"), password=PASSWORD)
    topo.start()
    yield topo
    topo.stop()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterTopology]:
    topo = ClusterTopology(tmp_path_factory.mktemp("limits-cluster"), password=PASSWORD)
    topo.start()
    yield topo
    topo.stop()


def test_sentinel_and_cluster_storage_urls() -> None:
    assert limits_url("redis+sentinel://:pw@h1:26379,h2:26380/3/mymaster") \
        == "async+redis+sentinel://:pw@h1:26379,h2:26380/mymaster"
    assert limits_url("redis+cluster://u:pw@h1:7000,h2:7001") \
        == "async+redis+cluster://u:pw@h1:7000,h2:7001"


async def _shared_counts(url: str) -> tuple[RateLimits, RateLimits]:
    first, second = RateLimits(url), RateLimits(url)
    await first.start()
    await second.start()
    assert first.backend == "redis" and second.backend == "redis"
    assert await first.hit("join", "1.2.3.4", "2/minute")
    assert await second.hit("join", "1.2.3.4", "2/minute")
    assert not await first.hit("join", "1.2.3.4", "2/minute")
    assert not await second.hit("join", "1.2.3.4", "2/minute")
    assert await second.hit("join", "5.6.7.8", "2/minute")  # another key counts apart
    return first, second


async def test_counts_are_shared_on_the_sentinel_master(sentinel: SentinelTopology) -> None:
    first, second = await _shared_counts(sentinel.url(db=4))
    with sentinel.master.client() as master:
        master.execute_command("SELECT", 4)
        assert any(key.startswith("LIMITS") or "join" in key for key in master.keys("*"))
    await first.aclose()
    await second.aclose()


async def test_counts_are_shared_on_a_cluster(cluster: ClusterTopology) -> None:
    first, second = await _shared_counts(cluster.url())
    await first.aclose()
    await second.aclose()


async def test_from_settings_on_a_cluster(cluster: ClusterTopology, tmp_path: Path) -> None:
    limits = RateLimits.from_settings(Settings(_env_file=None, redis_url=cluster.url(),
                                               data_dir=tmp_path))
    await limits.start()
    assert limits.backend == "redis"
    assert await limits.hit("rooms", "9.9.9.9", "1/minute")
    assert not await limits.hit("rooms", "9.9.9.9", "1/minute")
    await limits.aclose()


@pytest.mark.parametrize("scheme", ["redis+cluster", "redis+sentinel"])
async def test_dead_nodes_fail_open_to_memory(scheme: str) -> None:
    hosts = f"127.0.0.1:{free_port()},127.0.0.1:{free_port()}"
    url = f"{scheme}://:{PASSWORD}@{hosts}" + ("/0/mymaster" if "sentinel" in scheme else "")
    limits = RateLimits(url)
    await limits.start()
    assert limits.backend == "memory"
    assert [await limits.hit("join", "1.1.1.1", "2/minute") for _ in range(3)] \
        == [True, True, False]
    await limits.aclose()
