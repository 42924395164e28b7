"""The rest of the system on a real Redis Cluster: the game state (room scripts on one hash
tag, the instances' pipeline), connection counts (through the cache's `shared`), and the
Socket.IO manager (classic Pub/Sub on one node reaches every node)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from app.cache.connection import async_client, is_cluster
from app.core.config import Settings
from app.services.video_cache import VideoCache
from app.sockets.connections import ConnectionCounter
from app.sockets.manager import GameRedisManager, client_manager, pubsub_url, socketio_url
from app.state.instances import Instances
from app.state.redis_store import RedisRoomStore
from app.state.store import RoomStore
from tests.state import test_book as book_tests
from tests.support.topologies import ClusterTopology

pytestmark = pytest.mark.slow
PASSWORD = "sy5tem-secret"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterTopology]:
    topo = ClusterTopology(tmp_path_factory.mktemp("system-cluster"), password=PASSWORD)
    topo.start()
    yield topo
    topo.stop()


@pytest.fixture
def settings(cluster: ClusterTopology, tmp_path: Path) -> Settings:
    for server in cluster.primaries():
        with server.client() as client:
            client.flushall()
    return Settings(_env_file=None, redis_url=cluster.url(), data_dir=tmp_path)


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[aioredis.Redis]:
    made = async_client(settings)  # what app/state/wiring.py uses
    assert is_cluster(made)
    yield made
    await made.aclose()


@pytest.mark.parametrize("case", [
    book_tests.test_a_stale_copy_loses_the_race_and_runs_again_on_the_fresh_one,
    book_tests.test_a_refused_move_saves_nothing,
    book_tests.test_history_keeps_the_last_rounds_with_their_game,
    book_tests.test_the_schedule_is_claimed_once_and_comes_back_after_the_lease,
    book_tests.test_an_emptied_room_is_deleted,
], ids=lambda case: case.__name__.removeprefix("test_"))
async def test_the_room_book_runs_on_a_cluster(
        client: aioredis.Redis, case: Callable[[RoomStore], Awaitable[None]]) -> None:
    await case(RedisRoomStore(client))


async def test_instances_see_each_other_and_claim_the_dead_once(
        client: aioredis.Redis) -> None:
    now = [1000.0]
    first = Instances(client, "first", ttl=5, clock=lambda: now[0])
    second = Instances(client, "second", ttl=5, clock=lambda: now[0])
    third = Instances(client, "third", ttl=5, clock=lambda: now[0])
    for instance in (first, second, third, first):
        assert await instance.heartbeat() == []
    assert first.peers == {"second", "third"}
    await third.track("ROOMA")
    assert await first.rooms_of("third") == ["ROOMA"]
    now[0] += 3
    await first.heartbeat()
    await second.heartbeat()
    now[0] += 3  # third stopped beating 6 s ago
    claims = [await second.heartbeat(), await first.heartbeat()]
    assert sorted(claims) == [[], ["third"]]  # one claim only
    assert first.peers == {"second"}


async def test_connection_counts_are_shared_through_the_cache(settings: Settings) -> None:
    cache = VideoCache(settings)
    await cache.astart()
    here = ConnectionCounter(2, 30, lambda: cache.shared, instance_id="here")
    there = ConnectionCounter(2, 30, lambda: cache.shared, instance_id="there")
    assert await here.open("s1", "10.0.0.1")
    assert await there.open("s2", "10.0.0.1")
    assert not await here.open("s3", "10.0.0.1")  # the address is full across instances
    assert await here.open("s4", "10.0.0.2")
    await there.close("s2")
    assert await here.open("s3", "10.0.0.1")
    await cache.aclose()


def test_socketio_gets_the_first_node_as_a_plain_url(cluster: ClusterTopology,
                                                     settings: Settings) -> None:
    first = cluster.ports[0]
    assert pubsub_url(cluster.url()) == f"redis://:{PASSWORD}@127.0.0.1:{first}"
    assert pubsub_url("redis+cluster://u:p%40ss@[::1]:7000,h:7001") \
        == "redis://u:p%40ss@[::1]:7000"
    assert pubsub_url("redis://h:1/2") == "redis://h:1/2"
    assert socketio_url(settings) == cluster.url()
    other = settings.model_copy(update={"socketio_redis_url": "redis://elsewhere:6380"})
    assert socketio_url(other) == "redis://elsewhere:6380"
    manager = client_manager(cluster.url(), "punchline-test")
    assert isinstance(manager, GameRedisManager) and PASSWORD not in manager.masked_url
    assert manager.masked_url == f"redis://:***@127.0.0.1:{first}"
    with pytest.raises(ValueError, match="SOCKETIO_REDIS_URL"):
        Settings(_env_file=None, redis_url="memory://", socketio_redis_url=cluster.url())


async def test_a_publish_on_one_node_reaches_a_subscriber_on_another(
        cluster: ClusterTopology) -> None:
    publisher = aioredis.Redis.from_url(pubsub_url(cluster.url()))
    far = cluster.servers[-1]  # not the node the manager talks to
    subscriber = aioredis.Redis(host="127.0.0.1", port=far.port, password=PASSWORD)
    pubsub = subscriber.pubsub()
    await pubsub.subscribe("punchline-test")
    await pubsub.get_message(timeout=1)  # the subscribe confirmation
    await publisher.publish("punchline-test", "hello")
    message = None
    for _ in range(50):
        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.1)
        if message is not None:
            break
        await asyncio.sleep(0)
    assert message is not None and message["data"] == b"hello"
    await pubsub.aclose()
    await subscriber.aclose()
    await publisher.aclose()
