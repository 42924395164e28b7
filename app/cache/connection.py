"""The one place that builds redis-py clients from settings: every topology, fail-fast options.

    client = sync_client(settings)          # redis.Redis on the URL's server or Sentinel master
    client = async_client(settings)         # the redis.asyncio twin (game state, rate limits...)

REDIS_URL picks the topology (`app/core/redis_url.py`): one server (`redis://`, `unix://`),
one server over TLS (`rediss://` plus REDIS_TLS_*), or the master of a Sentinel service
(`redis+sentinel://`), or a Redis Cluster (`redis+cluster://`). Callers get an ordinary `Redis`
for the first three; with Sentinel its pool asks the sentinels for the master's address on each
new connection and drops connections to a demoted master (redis-py turns its READONLY replies
into a ConnectionError), so an outage seen through the breaker is followed by a reconnect to
the new master.

Cluster: a redis-py `RedisCluster` (sync or asyncio), typed as `Redis` for the callers: it has
the same single-key commands, scripts and pipelines. Where Cluster differs (multi-key reads,
SCAN, WAIT, INFO), the code asks `is_cluster(client)`. The client follows MOVED and ASK itself
and re-reads the slot map after a connection error, but makes no retries of its own (fail
fast, as elsewhere): the breaker and the probe decide when to ask again. `cluster_nodes`
gives plain clients on each primary (client tracking, the doctor).
"""

from __future__ import annotations

import hashlib
from typing import Any, cast
from urllib.parse import urlsplit

import redis
import redis.asyncio as aioredis
import redis.asyncio.sentinel as aiosentinel
import redis.sentinel
from redis.asyncio.cluster import ClusterNode as AsyncClusterNode
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.backoff import NoBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.connection import parse_url
from redis.retry import Retry

from app.core.config import Settings
from app.core.redis_url import (
    MEMORY_SCHEMES,
    RedisAddress,
    mask_url,
    parse_multi_host,
    topology_of,
    with_db,
)

__all__ = ["MEMORY_SCHEMES", "async_client", "client_options", "cluster_address",
           "cluster_node_client", "cluster_nodes", "effective_url", "is_cluster",
           "is_memory_url", "make_async_client", "make_sync_client", "mask_url", "redis_target",
           "sentinel_address", "sentinel_clients", "sync_client"]

# Options of the Redis client object, not of its connections: a Sentinel pool must not get them.
CLIENT_ONLY_OPTIONS = frozenset({"single_connection_client"})
# Options a RedisCluster does not take (it pools per node, has no single connection, and the
# asyncio one no retry_on_timeout: with `retry` at 0 nothing is retried anyway).
NOT_FOR_CLUSTER = frozenset({"single_connection_client", "retry_on_timeout"})


def is_memory_url(url: str) -> bool:
    return urlsplit(url).scheme in MEMORY_SCHEMES


def effective_url(settings: Settings) -> str:
    """REDIS_URL with REDIS_DB, when set, as its database."""
    if settings.redis_db is None:
        return settings.redis_url
    return with_db(settings.redis_url, settings.redis_db)


def sentinel_address(settings: Settings) -> RedisAddress | None:
    """The parsed Sentinel URL (with REDIS_DB applied), or None for other topologies."""
    if topology_of(settings.redis_url) != "sentinel":
        return None
    return parse_multi_host(effective_url(settings))


def cluster_address(settings: Settings) -> RedisAddress | None:
    """The parsed Cluster URL, or None for other topologies."""
    if topology_of(settings.redis_url) != "cluster":
        return None
    return parse_multi_host(settings.redis_url)


def is_cluster(client: object) -> bool:
    """Whether `client` (typed `Redis` for its callers) is a sync or asyncio RedisCluster."""
    return isinstance(client, RedisCluster | AsyncRedisCluster)


def redis_target(settings: Settings) -> str:
    """A short, password-free name of the Redis a write is meant for: host, port and db.

    The outage journal tags each record with it, so a journal is never replayed into another
    Redis than the one its writes were acknowledged for. A Sentinel service is named by its
    sentinels and service name, not by its master, which moves on failover.
    """
    if is_memory_url(settings.redis_url):
        return "memory"
    address = sentinel_address(settings)
    cluster = cluster_address(settings)
    if address is not None:
        nodes = ",".join(sorted(f"{host}:{port}" for host, port in address.nodes))
        place, db = f"sentinel:{address.service}@{nodes}", address.db
    elif cluster is not None:  # named by its startup nodes: primaries move on failover
        nodes = ",".join(sorted(f"{host}:{port}" for host, port in cluster.nodes))
        place, db = f"cluster:{nodes}", 0
    else:
        options = parse_url(effective_url(settings))  # type: ignore[no-untyped-call]
        if "path" in options:
            place = f"unix:{options['path']}"
        else:
            place = f"{options.get('host', 'localhost')}:{options.get('port', 6379)}"
        db = options.get("db", 0)
    return hashlib.sha256(f"{place}/{db}".encode()).hexdigest()[:16]


def client_options(settings: Settings) -> dict[str, Any]:
    # redis-py retries three times by default: against a dead server that turns one call into
    # seconds. The breaker handles failures, so each call fails fast instead.
    return {
        "socket_connect_timeout": settings.redis_connect_timeout,
        "socket_timeout": settings.redis_socket_timeout,
        "retry": Retry(NoBackoff(), 0),
        "retry_on_timeout": False,
        "max_connections": settings.redis_max_connections,
        "health_check_interval": 0,
        **tls_options(settings),
    }


def tls_options(settings: Settings) -> dict[str, Any]:
    """redis-py's ssl_* options from REDIS_TLS_*; the URL's scheme (rediss://) turns TLS on."""
    options: dict[str, Any] = {}
    if settings.redis_tls_ca_file is not None:
        options["ssl_ca_certs"] = str(settings.redis_tls_ca_file)
    if settings.redis_tls_cert_file is not None:
        options["ssl_certfile"] = str(settings.redis_tls_cert_file)
    if settings.redis_tls_key_file is not None:
        options["ssl_keyfile"] = str(settings.redis_tls_key_file)
    return options


def _sentinel_parts(settings: Settings, extra: dict[str, Any]
                    ) -> tuple[RedisAddress, dict[str, Any], dict[str, Any], dict[str, Any]]:
    """(address, options of the sentinels' clients, of the master's pool, of the client)."""
    address = sentinel_address(settings)
    assert address is not None
    options = {**client_options(settings), **extra}
    client_only = {name: options.pop(name) for name in CLIENT_ONLY_OPTIONS if name in options}
    options["db"] = address.db
    if address.username:
        options["username"] = address.username
    if address.password:
        options["password"] = address.password
    if address.tls:  # rediss+sentinel://: the sentinels and the data nodes speak TLS
        options["ssl"] = True
    # The sentinels fail fast too (without this redis-py would give them its default retries),
    # and get the same TLS files.
    sentinel_options = {name: value for name, value in options.items()
                        if name.startswith(("socket_", "ssl")) or name == "retry"}
    return address, sentinel_options, options, client_only


class SentinelLinkError(redis.exceptions.ConnectionError):
    """A sentinel that could not be asked, with its cause in its repr: redis-py 8 names each
    failed sentinel in MasterNotFoundError's message by the repr of its error, which is only
    the error's class, so a wrong CA would read "network:ConnectionError"."""

    def __repr__(self) -> str:
        return str(self)


def _readable(exc: Exception) -> SentinelLinkError:
    return SentinelLinkError(str(exc) or type(exc).__name__)


class _SentinelLink(redis.Redis):
    """One sentinel's client, named in errors by its address (not a repr of its whole pool)."""

    def __repr__(self) -> str:
        kwargs = self.connection_pool.connection_kwargs
        return f"sentinel {kwargs.get('host')}:{kwargs.get('port')}"

    def sentinel_masters(self) -> Any:
        try:
            return super().sentinel_masters()
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
            raise _readable(exc) from exc


class _AsyncSentinelLink(aioredis.Redis):
    __repr__ = _SentinelLink.__repr__

    async def sentinel_masters(self) -> Any:
        try:
            return await super().sentinel_masters()
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
            raise _readable(exc) from exc


class _Sentinel(redis.sentinel.Sentinel):
    def __init__(self, sentinels: list[tuple[str, int]], **options: Any) -> None:
        super().__init__(sentinels, **options)  # type: ignore[no-untyped-call]
        self.sentinels = [_SentinelLink(host=host, port=port, **self.sentinel_kwargs)
                          for host, port in sentinels]


class _AsyncSentinel(aiosentinel.Sentinel):
    def __init__(self, sentinels: list[tuple[str, int]], **options: Any) -> None:
        super().__init__(sentinels, **options)  # type: ignore[no-untyped-call]
        self.sentinels = [_AsyncSentinelLink(host=host, port=port, **self.sentinel_kwargs)
                          for host, port in sentinels]


class _SentinelPool(redis.sentinel.SentinelConnectionPool):
    """The master's pool of one client; closing it also closes that client's sentinel links."""

    def disconnect(self, inuse_connections: bool = True) -> None:
        super().disconnect(inuse_connections)
        if inuse_connections:  # a full close, not the drop of idle links after a failover
            self.sentinel_manager.close()


class _AsyncSentinelPool(aiosentinel.SentinelConnectionPool):
    async def aclose(self) -> None:
        await super().aclose()
        await self.sentinel_manager.aclose()


def sentinel_clients(settings: Settings) -> list[redis.Redis]:
    """One fail-fast client per sentinel of a Sentinel URL (the doctor asks each)."""
    address, sentinel_options, _, _ = _sentinel_parts(settings, {})
    return [redis.Redis(host=host, port=port, decode_responses=True, **sentinel_options)
            for host, port in address.nodes]


def _cluster_options(settings: Settings, extra: dict[str, Any]
                     ) -> tuple[RedisAddress, dict[str, Any]]:
    address = cluster_address(settings)
    assert address is not None
    options = {**client_options(settings), **extra}
    for name in NOT_FOR_CLUSTER:
        options.pop(name, None)
    if address.username:
        options["username"] = address.username
    if address.password:
        options["password"] = address.password
    if address.tls:  # rediss+cluster://: from_url's rediss:// rule, for every node's connection
        options["ssl"] = True
    # The cluster-level retry (ConnectionError, ClusterDown...) is the `retry` above: none.
    # A missing slot (a primary died, no replica promoted yet) is an error, not a hang.
    options["require_full_coverage"] = False
    return address, options


def make_cluster_client(settings: Settings, **extra: Any) -> RedisCluster:
    """A sync RedisCluster. It reads the slot map from a startup node at once, so this raises
    (RedisClusterException) when none answers: callers build it inside their error handling.
    """
    address, options = _cluster_options(settings, extra)
    nodes = [ClusterNode(host, port)  # type: ignore[no-untyped-call]
             for host, port in address.nodes]
    return RedisCluster(startup_nodes=nodes, **options)


def make_async_cluster_client(settings: Settings, **extra: Any) -> AsyncRedisCluster:
    """An asyncio RedisCluster; it connects (and reads the slot map) on its first command."""
    address, options = _cluster_options(settings, extra)
    return AsyncRedisCluster(
        startup_nodes=[AsyncClusterNode(host, port) for host, port in address.nodes],
        **options)


def cluster_node_client(settings: Settings, host: str, port: int, **extra: Any) -> redis.Redis:
    """A plain fail-fast client on one cluster node, with the URL's credentials."""
    _, options = _cluster_options(settings, {})
    options.pop("require_full_coverage")
    return redis.Redis(host=host, port=port, **{**options, **extra})


def cluster_nodes(settings: Settings, client: redis.Redis, *, primaries_only: bool = True,
                  **extra: Any) -> list[redis.Redis]:
    """One plain client per node (per primary by default) that the sync cluster `client`
    knows now; the caller closes them."""
    assert isinstance(client, RedisCluster)
    nodes = client.get_primaries() if primaries_only else client.get_nodes()
    return [cluster_node_client(settings, node.host, node.port, **extra) for node in nodes]


def make_sync_client(settings: Settings, **extra: Any) -> redis.Redis:
    topology = topology_of(settings.redis_url)
    if topology == "cluster":
        return cast(redis.Redis, make_cluster_client(settings, **extra))
    if topology != "sentinel":
        return redis.Redis.from_url(effective_url(settings),
                                    **{**client_options(settings), **extra})
    address, sentinel_options, pool_options, client_only = _sentinel_parts(settings, extra)
    manager = _Sentinel(list(address.nodes), sentinel_kwargs=sentinel_options)
    pool = _SentinelPool(  # type: ignore[no-untyped-call]
        address.service, manager, **pool_options)
    client = redis.Redis(connection_pool=pool, **client_only)
    client.auto_close_connection_pool = True  # the pool is this client's alone
    return client


def make_async_client(settings: Settings, **extra: Any) -> aioredis.Redis:
    topology = topology_of(settings.redis_url)
    if topology == "cluster":
        return cast(aioredis.Redis, make_async_cluster_client(settings, **extra))
    if topology != "sentinel":
        return aioredis.Redis.from_url(effective_url(settings),
                                       **{**client_options(settings), **extra})
    address, sentinel_options, pool_options, client_only = _sentinel_parts(settings, extra)
    manager = _AsyncSentinel(list(address.nodes), sentinel_kwargs=sentinel_options)
    pool = _AsyncSentinelPool(  # type: ignore[no-untyped-call]
        address.service, manager, **pool_options)
    client = aioredis.Redis(connection_pool=pool, **client_only)
    client.auto_close_connection_pool = True
    return client


def sync_client(settings: Settings, **extra: Any) -> redis.Redis:
    """A new sync client for REDIS_URL (any topology); the caller closes it."""
    return make_sync_client(settings, **extra)


def async_client(settings: Settings, **extra: Any) -> aioredis.Redis:
    """A new asyncio client for REDIS_URL (any topology), bound to the running loop's use.

    For other subsystems (game state, rate limits) that need the cache's Redis: the same
    topology, TLS files, fail-fast timeouts and no retries. The caller closes it (`aclose`).
    """
    return make_async_client(settings, **extra)
