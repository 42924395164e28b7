"""Read-only checks of the Redis set-up behind the cache (`python -m app.cli doctor`).

Nothing here writes a key or replays the journal: the doctor may be pointed at any Redis. It
uses its own short-lived clients and maps their errors in the one place (`mapped_errors`).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

import redis

from app.cache.connection import (
    cluster_address,
    cluster_nodes,
    effective_url,
    is_memory_url,
    make_sync_client,
    mask_url,
    redis_target,
    sentinel_address,
)
from app.cache.errors import CacheBackendError, mapped_errors
from app.cache.healer import MARKER_KEY
from app.cache.journal import Journal
from app.cache.topology import Check, cluster_checks, topology_checks
from app.core.cards import KEY_PREFIX
from app.core.config import Settings

__all__ = ["Check", "diagnose"]
# Check.status: "fail" makes the doctor exit non-zero; "warn" is advice.
EVICTING_POLICIES = {"allkeys-lru", "allkeys-lfu", "allkeys-random"}


def diagnose(settings: Settings) -> list[Check]:
    checks = [Check("ok", f"REDIS_URL: {mask_url(settings.redis_url)}")]
    if is_memory_url(settings.redis_url):
        checks.append(Check("warn", "memory-only cache: entries live in one process and "
                                    "vanish when it stops"))
    else:
        checks += _redis_checks(settings)
    checks += _journal_checks(settings)
    from app.video.doctor import storage_checks  # the videos' store, next to the cache's

    return checks + storage_checks(settings)


def _redis_checks(settings: Settings) -> list[Check]:
    if cluster_address(settings) is not None:
        return _cluster_checks(settings)
    try:
        with mapped_errors():  # a single-connection client connects when it is built
            client = make_sync_client(settings, single_connection_client=True)
            try:
                info = client.info()
            except BaseException:
                client.close()
                raise
    except CacheBackendError as exc:
        return [Check("fail", f"Redis unreachable: {exc}")]
    try:
        checks = topology_checks(settings, client)
        with mapped_errors():
            primary = _address(client)
            checks.append(Check("ok", f"Redis {info.get('redis_version')} answers at {primary}"))
            checks.append(_on(primary, _policy(client)))
            checks.append(_on(primary, _persistence(client)))
            checks.append(_index_marker(client))
            checks.append(_render_workers(settings, client))
    except CacheBackendError as exc:
        checks.append(Check("fail", f"Redis check failed: {exc}"))
    finally:
        client.close()
    checks.append(_password_needed(settings))
    if settings.cache_near_enabled:
        checks.append(_tracking(settings))
    return checks


def _cluster_checks(settings: Settings) -> list[Check]:
    """Cluster: the nodes and roles, then eviction, persistence and tracking on each primary."""
    try:
        with mapped_errors():  # a sync RedisCluster reads the slot map when it is built
            cluster = make_sync_client(settings)
    except CacheBackendError as exc:
        return [Check("fail", f"Redis Cluster unreachable: {exc}")]
    try:
        checks = cluster_checks(settings, cluster)
        with mapped_errors():
            checks.append(_index_marker(cluster))
            checks.append(_render_workers(settings))
            primaries = cluster_nodes(settings, cluster, single_connection_client=True)
        for node in primaries:
            where = "{host}:{port}".format_map(node.connection_pool.connection_kwargs)
            try:
                with mapped_errors():
                    version = node.info("server").get("redis_version")
                    checks.append(Check("ok", f"Redis {version} answers at {where}"))
                    checks.append(_on(where, _policy(node)))
                    checks.append(_on(where, _persistence(node)))
                    if settings.cache_near_enabled:
                        checks.append(_on(where, _tracking_on(node)))
            except CacheBackendError as exc:
                checks.append(Check("fail", f"primary {where}: {exc}"))
            finally:
                node.close()
    except CacheBackendError as exc:
        checks.append(Check("fail", f"Redis check failed: {exc}"))
    finally:
        cluster.close()
    checks.append(_password_needed(settings))
    return checks


def _render_workers(settings: Settings, client: redis.Redis | None = None) -> Check:
    """The render workers whose SAQ heartbeat is fresh (app/video/queue.py), on the queue's
    Redis: `client` when that is REDIS_URL, else VIDEO_QUEUE_REDIS_URL's."""
    from app.video.queue import NoQueueRedis, queue_settings, read_workers

    try:
        queue = queue_settings(settings)
    except NoQueueRedis as exc:
        return Check("warn", f"render queue: {exc}")
    if queue is settings and client is not None:
        return _workers_check(settings, read_workers(client, settings.video_queue_name))
    where = mask_url(queue.redis_url)
    try:
        with mapped_errors():
            own = make_sync_client(queue, single_connection_client=True)
            try:
                workers = read_workers(own, settings.video_queue_name)
            finally:
                own.close()
    except CacheBackendError as exc:
        return Check("fail", f"render queue's Redis ({where}) unreachable: {exc}")
    return _workers_check(settings, workers)


def _workers_check(settings: Settings, workers: list[dict[str, Any]]) -> Check:
    if not workers:
        external = settings.video_worker_mode == "external"
        return Check("fail" if external else "warn",
                     "render workers: none seen" + (
                         " (VIDEO_WORKER_MODE=external: start `python -m app.worker`)"
                         if external else " (no web instance or worker is running)"))
    names = ", ".join(f"{w.get('host', '?')}:{w.get('pid', '?')} ({w.get('mode', '?')})"
                      for w in workers[:8])
    return Check("ok", f"render workers: {len(workers)} alive: {names}")


def _address(client: redis.Redis) -> str:
    """host:port (or socket path) of the server a connected single-connection client is on."""
    connection = client.connection
    if connection is None:
        return "?"
    path = getattr(connection, "path", None)
    if path:
        return str(path)
    return f"{getattr(connection, 'host', '?')}:{getattr(connection, 'port', '?')}"


def _on(primary: str, check: Check) -> Check:
    """Label a per-server check with the primary it was made on."""
    return Check(check.status, f"{check.text} [primary {primary}]")


def _config(client: redis.Redis, name: str, default: str) -> str:
    return str(client.config_get(name).get(name, default))


def _policy(client: redis.Redis) -> Check:
    policy = _config(client, "maxmemory-policy", "?")
    if policy in EVICTING_POLICIES:
        return Check("fail", f"maxmemory-policy {policy} can evict permanent winners; "
                             "use volatile-lru")
    return Check("ok", f"maxmemory-policy {policy}")


def _persistence(client: redis.Redis) -> Check:
    aof, save = _config(client, "appendonly", "no"), _config(client, "save", "")
    if aof != "yes" and not save:
        return Check("warn", "no persistence (appendonly no, no save points): permanent "
                             "entries vanish when Redis restarts (the index heals from the "
                             "stored videos' sidecars, but only what is on disk)")
    return Check("ok", f"persistence: appendonly={aof} save='{save}'")


def _index_marker(client: redis.Redis) -> Check:
    if client.exists(MARKER_KEY):
        return Check("ok", "index marker present: the index is complete")
    return Check("warn", f"no index marker ({MARKER_KEY}): Redis lost its data or no server "
                         "has run against it yet; a running server rebuilds the index from "
                         "the stored videos, or run `reindex`")


def _password_needed(settings: Settings) -> Check:
    """A password in REDIS_URL that the server does not ask for protects nothing."""
    address = sentinel_address(settings) or cluster_address(settings)
    if address is not None:
        password = address.password
    else:
        options = redis.connection.parse_url(  # type: ignore[no-untyped-call]
            effective_url(settings))
        password = options.get("password")
    if not password:
        return Check("ok", "REDIS_URL carries no password")
    anonymous = settings.model_copy(update={"redis_url": _without_auth(settings.redis_url)})
    try:
        with mapped_errors():
            client = make_sync_client(anonymous, single_connection_client=True)
            try:
                client.ping()
            finally:
                client.close()
    except CacheBackendError:  # NOAUTH / AuthenticationError on the first command
        return Check("ok", "the server requires the password in REDIS_URL")
    return Check("fail", "REDIS_URL has a password, but the server accepts connections "
                         "without one: set requirepass (or an ACL) on the server")


def _without_auth(url: str) -> str:
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    query = "&".join(pair for pair in parts.query.split("&")
                     if pair and pair.split("=", 1)[0].lower() not in {"password", "username"})
    return urlunsplit((parts.scheme, host, parts.path, query, parts.fragment))


def _tracking(settings: Settings) -> Check:
    """The near cache needs CLIENT TRACKING (Redis >= 6, and allowed by the ACL)."""
    try:
        with mapped_errors():
            client = make_sync_client(settings, single_connection_client=True)
    except CacheBackendError as exc:
        return _no_tracking(exc)
    try:
        return _tracking_on(client)
    finally:
        client.close()


def _tracking_on(client: redis.Redis) -> Check:
    """CLIENT TRACKING on and off again, on one connection (single-connection client)."""
    try:
        with mapped_errors():
            client.execute_command(  # type: ignore[no-untyped-call]
                "CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", KEY_PREFIX)
            client.execute_command(  # type: ignore[no-untyped-call]
                "CLIENT", "TRACKING", "OFF")
    except CacheBackendError as exc:
        return _no_tracking(exc)
    return Check("ok", "client tracking available (near cache)")


def _no_tracking(exc: Exception) -> Check:
    return Check("fail", f"client tracking unavailable ({exc}): the near cache stays off and "
                         "every read goes to Redis")


def _journal_checks(settings: Settings) -> list[Check]:
    journal = Journal(settings.journal_path, settings.cache_journal_fsync,
                      redis_target(settings))
    try:
        pending = len(journal.pending())
        aside = journal.aside_files()
    except OSError as exc:
        return [Check("fail", f"journal {settings.journal_path} unreadable: {exc}")]
    checks = [Check("ok" if pending == 0 else "warn",
                    f"journal: {pending} writes waiting for replay into this Redis")]
    if aside:
        checks.append(Check("warn", f"journal: {len(aside)} files set aside for another Redis "
                                    f"(never replayed here), e.g. {aside[0].name}"))
    return checks
