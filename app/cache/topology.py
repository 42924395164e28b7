"""What the doctor reports about the Redis deployment: nodes, roles and replication.

Read-only, short-lived fail-fast clients, errors mapped once (`mapped_errors`). One server
(`redis://`, `rediss://`, `unix://`): its role and replicas from `INFO replication`. Sentinel:
each sentinel's view of the service (`SENTINEL MASTER` / `REPLICAS`), then the master itself.
Cluster: `CLUSTER INFO` (state, slots) and `CLUSTER NODES` (every node, its role, its link and
the replicas of each primary), as one node sees them. Persistence and eviction policy on the
primary are checked by `doctor.py` on the client that reaches it (for Sentinel, the master the
sentinels name; for Cluster, each primary in turn).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import redis

from app.cache.connection import (
    cluster_address,
    sentinel_address,
    sentinel_clients,
)
from app.cache.errors import CacheBackendError, mapped_errors
from app.core.config import Settings
from app.core.redis_url import uses_tls

Status = Literal["ok", "warn", "fail"]


@dataclass(frozen=True)
class Check:
    status: Status
    text: str


def topology_checks(settings: Settings, primary: redis.Redis) -> list[Check]:
    """`primary` is a connected client on the server the cache writes to."""
    address = sentinel_address(settings)
    tls = " over TLS" if uses_tls(settings.redis_url) else ""
    if address is None:
        checks = [Check("ok", f"topology: one server{tls}")]
    else:
        checks = [Check("ok", f"topology: Sentinel{tls}, service {address.service}, "
                              f"{len(address.nodes)} sentinel(s) listed")]
        checks += _sentinel_checks(settings, address.service or "")
    try:
        with mapped_errors():
            info = primary.info("replication")
    except CacheBackendError as exc:
        return [*checks, Check("fail", f"replication info unavailable: {exc}")]
    return checks + _replication_checks(settings, info)


def _replication_checks(settings: Settings, info: dict[str, Any]) -> list[Check]:
    if info.get("role") != "master":
        return [Check("fail", f"the server the cache writes to is a replica of "
                              f"{info.get('master_host')}:{info.get('master_port')}: "
                              "writes fail with READONLY")]
    replicas = [value for name, value in sorted(info.items())
                if name.startswith("slave") and isinstance(value, dict)]
    rows = ", ".join(f"{r.get('ip')}:{r.get('port')} ({r.get('state')}, lag {r.get('lag')} s)"
                     for r in replicas)
    checks = [Check("ok", f"primary: {len(replicas)} replica(s) connected"
                          + (f": {rows}" if rows else ""))]
    if not replicas:
        checks.append(Check("ok", "no replica: permanent writes are not waited for (WAIT "
                                  "applies when replicas exist)"))
    elif settings.redis_wait_ms > 0:
        checks.append(Check("ok", f"permanent writes wait for 1 replica (WAIT 1 "
                                  f"{settings.redis_wait_ms} ms): a failover loses none"))
    else:
        checks.append(Check("warn", "REDIS_WAIT_MS=0 with replicas: a failover may lose the "
                                    "last permanent writes the primary acknowledged"))
    return checks


def _sentinel_checks(settings: Settings, service: str) -> list[Check]:
    checks: list[Check] = []
    answering = 0
    for client in sentinel_clients(settings):
        where = "{host}:{port}".format_map(client.connection_pool.connection_kwargs)
        try:
            with mapped_errors():
                master = _state(client.execute_command(  # type: ignore[no-untyped-call]
                    "SENTINEL MASTER", service))
                replicas = client.execute_command(  # type: ignore[no-untyped-call]
                    "SENTINEL REPLICAS", service)
        except CacheBackendError as exc:
            checks.append(Check("warn", f"sentinel {where}: {exc}"))
            continue
        finally:
            client.close()
        answering += 1
        checks.append(Check("ok", f"sentinel {where}: master {master['ip']}:{master['port']} "
                                  f"({_flags(master)}), quorum {master.get('quorum')}, "
                                  f"{master.get('num-other-sentinels', 0)} other sentinel(s)"))
        for replica in replicas:
            healthy = replica.get("master-link-status") == "ok" and _flags(replica) == "slave"
            checks.append(Check("ok" if healthy else "warn",
                                f"  replica {replica['ip']}:{replica['port']} "
                                f"({_flags(replica)}, link {replica.get('master-link-status')})"))
    if answering == 0:
        checks.append(Check("fail", f"no sentinel answers for service {service}"))
    return checks


def _state(reply: object) -> dict[str, Any]:
    """redis-py parses SENTINEL MASTER into a dict; anything else is a protocol surprise."""
    if not isinstance(reply, dict):
        raise redis.ResponseError(f"unexpected SENTINEL MASTER reply: {reply!r}"[:200])
    return reply


def _flags(state: dict[str, Any]) -> str:
    flags = state.get("flags", "")
    return ",".join(sorted(flags)) if isinstance(flags, set | frozenset) else str(flags)


def cluster_checks(settings: Settings, cluster: redis.Redis) -> list[Check]:
    """`cluster` is a connected (sync) RedisCluster client."""
    address = cluster_address(settings)
    assert address is not None
    tls = " over TLS" if address.tls else ""
    checks = [Check("ok", f"topology: Cluster{tls}, {len(address.nodes)} startup node(s) listed")]
    try:
        with mapped_errors():
            info = cluster.execute_command("CLUSTER INFO")  # type: ignore[no-untyped-call]
            nodes = cluster.execute_command("CLUSTER NODES")  # type: ignore[no-untyped-call]
    except CacheBackendError as exc:
        return [*checks, Check("fail", f"cluster state unavailable: {exc}")]
    state = info.get("cluster_state")
    checks.append(Check("ok" if state == "ok" else "fail",
                        f"cluster_state:{state}, {info.get('cluster_slots_ok')} of 16384 slots "
                        f"served, {info.get('cluster_known_nodes')} node(s) known"))
    rows = _node_rows(nodes)
    for node_id, row in sorted(rows.items(), key=lambda item: item[1]["address"]):
        if "master" not in row["flags"]:
            continue
        if "fail" in row["flags"] and not row["slots"]:
            checks.append(Check("warn", f"node {row['address']} failed and serves no slots "
                                        "(replaced; remove it with CLUSTER FORGET)"))
            continue
        replicas = [r for r in rows.values() if r["primary"] == node_id]
        healthy = [r for r in replicas if r["link"] == "connected" and "fail" not in r["flags"]]
        listed = ", ".join(
            f"{r['address']} ({r['link']}{', failed' if 'fail' in r['flags'] else ''})"
            for r in replicas)
        status: Status = "ok" if "fail" not in row["flags"] and row["link"] == "connected" \
            else "fail"
        checks.append(Check(status, f"primary {row['address']} ({row['link']}, "
                                    f"{row['slots']} slot range(s)): {len(healthy)} replica(s)"
                                    + (f": {listed}" if listed else "")))
        if not healthy:
            checks.append(Check("warn", f"  primary {row['address']} has no live replica: its "
                                        "slots go down with it, and WAIT cannot protect them"))
    if settings.redis_wait_ms == 0 and any("slave" in r["flags"] for r in rows.values()):
        checks.append(Check("warn", "REDIS_WAIT_MS=0 with replicas: a failover may lose the "
                                    "last permanent writes a primary acknowledged"))
    return checks


def _node_rows(nodes: object) -> dict[str, dict[str, Any]]:
    """CLUSTER NODES by node id; redis-py parses it into a dict keyed by address."""
    rows: dict[str, dict[str, Any]] = {}
    if isinstance(nodes, dict):
        for address, node in nodes.items():
            flags = str(node.get("flags", ""))
            rows[str(node.get("node_id"))] = {
                "address": str(address).split("@")[0], "flags": flags.split(","),
                "primary": node.get("master_id", "-"),
                "link": "connected" if node.get("connected") else "disconnected",
                "slots": len(node.get("slots", []))}
        return rows
    for line in str(nodes).splitlines():
        parts = line.split()
        if len(parts) >= 8:
            rows[parts[0]] = {"address": parts[1].split("@")[0], "flags": parts[2].split(","),
                              "primary": parts[3], "link": parts[7], "slots": len(parts) - 8}
    return rows
