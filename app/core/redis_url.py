"""REDIS_URL, read once: which topology it names, where its nodes are, and how to mask it.

Pure (no I/O), so the settings validator and the client factory (`app/cache/connection.py`)
share it. The forms:

    redis://[user:pw@]host:port[/db]          one server (also unix:// and memory://)
    rediss://[user:pw@]host:port[/db]         one server over TLS (REDIS_TLS_* settings)
    redis+sentinel://[user:pw@]h1:p1,h2:p2/db/service
                                              Sentinel; python-socketio's format, so one URL
                                              serves the cache, game state and Socket.IO
    rediss+sentinel://[user:pw@]h1:p1,h2:p2/db/service
                                              Sentinel over TLS: the sentinels and the data
                                              nodes all speak TLS (REDIS_TLS_* settings)
    redis+cluster://[user:pw@]h1:p1,h2:p2     Cluster startup nodes
    rediss+cluster://[user:pw@]h1:p1,h2:p2    Cluster over TLS (REDIS_TLS_* settings): the
                                              extra "s" of rediss:// on the Cluster form

TLS is named by the scheme alone, as redis-py and python-socketio do for one server, so a URL
says all about how to connect; the REDIS_TLS_* files only say which certificates to use.

The password in a Sentinel URL is the data nodes' (the master and replicas), as in
python-socketio; the sentinels themselves are asked without one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import unquote, urlsplit, urlunsplit

Topology = Literal["memory", "standalone", "sentinel", "cluster"]
MEMORY_SCHEMES = frozenset({"memory", "mem"})
STANDALONE_SCHEMES = frozenset({"redis", "rediss", "unix"})
SENTINEL_SCHEMES = frozenset({"redis+sentinel", "valkey+sentinel", "rediss+sentinel"})
CLUSTER_SCHEMES = frozenset({"redis+cluster", "rediss+cluster"})
TLS_SCHEMES = frozenset({"rediss", "rediss+cluster", "rediss+sentinel"})
DEFAULT_SENTINEL_PORT = 26379
SECRET_QUERY_KEYS = frozenset({"password", "username"})
SENTINEL_EXAMPLE = "redis+sentinel://host1:26379,host2:26379/0/mymaster"


@dataclass(frozen=True)
class RedisAddress:
    """What a REDIS_URL names. `nodes` are the sentinels (Sentinel) or startup nodes (Cluster)."""

    topology: Topology
    scheme: str
    nodes: tuple[tuple[str, int], ...] = ()
    service: str | None = None
    db: int = 0
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    @property
    def tls(self) -> bool:
        return self.scheme in TLS_SCHEMES


def uses_tls(url: str) -> bool:
    """Whether REDIS_URL asks for TLS (`rediss://`, `rediss+cluster://`, `rediss+sentinel://`)."""
    return urlsplit(url).scheme in TLS_SCHEMES


def topology_of(url: str) -> Topology:
    scheme = urlsplit(url).scheme
    if scheme in MEMORY_SCHEMES:
        return "memory"
    if scheme in SENTINEL_SCHEMES:
        return "sentinel"
    if scheme in CLUSTER_SCHEMES:
        return "cluster"
    return "standalone"


def parse_multi_host(url: str) -> RedisAddress:
    """A Sentinel or Cluster URL, checked. ValueError (never echoing the password) if bad."""
    parts = urlsplit(url)
    topology = topology_of(url)
    if topology not in {"sentinel", "cluster"}:
        raise ValueError(f"{parts.scheme}:// is not a Sentinel or Cluster URL")
    userinfo, _, hosts = parts.netloc.rpartition("@")
    username = password = None
    if userinfo:
        user, has_password, secret = userinfo.partition(":")
        username = unquote(user) or None
        password = unquote(secret) if has_password else None
    default_port = DEFAULT_SENTINEL_PORT if topology == "sentinel" else 6379
    nodes = tuple(_host_port(item, default_port) for item in hosts.split(","))
    if parts.query or parts.fragment:
        raise ValueError(f"{parts.scheme}:// URLs take no ?options or #fragment")
    segments = parts.path.split("/")[1:] if parts.path else []
    db = _db(segments[0]) if segments else 0
    if topology == "cluster":
        if db != 0 or len(segments) > 1:
            raise ValueError(f"{parts.scheme}:// has no database or path: Cluster has only db 0")
        return RedisAddress("cluster", parts.scheme, nodes, None, 0, username, password)
    service = segments[1] if len(segments) > 1 else ""
    if not service or len(segments) > 2:
        raise ValueError(f"a Sentinel URL ends with /db/service_name, e.g. {SENTINEL_EXAMPLE}")
    return RedisAddress("sentinel", parts.scheme, nodes, service, db, username, password)


def _host_port(item: str, default_port: int) -> tuple[str, int]:
    item = item.strip()
    if item.startswith("["):  # [IPv6]:port
        host, _, rest = item[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
    else:
        host, _, port_text = item.partition(":")
    if not host:
        raise ValueError(f"a host is missing in the list of nodes (e.g. {SENTINEL_EXAMPLE})")
    if not port_text:
        return host, default_port
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"port {port_text!r} of host {host} is not a port number")
    return host, int(port_text)


def _db(text: str) -> int:
    if text == "":
        return 0
    if not text.isdigit() or int(text) > 15:
        raise ValueError(f"database {text!r} is not a number from 0 to 15")
    return int(text)


def with_db(url: str, db: int) -> str:
    """The URL with `db` as its database (the /db/ segment of a Sentinel URL)."""
    parts = urlsplit(url)
    if topology_of(url) == "sentinel":
        segments = parts.path.split("/")[1:] if parts.path else []
        service = segments[1] if len(segments) > 1 else ""
        path = f"/{db}/{service}"
    else:
        path = f"/{db}"
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, parts.fragment))


def mask_url(url: str) -> str:
    """The URL with its password (in the authority or the query) replaced by `***`.

    Works for multi-host authorities (`user:pw@h1:p1,h2:p2`): the password is everything
    between the first ':' of the userinfo and the last '@'.
    """
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        if ":" in userinfo:  # user:password@ (a bare user@ carries no secret)
            netloc = f"{userinfo.split(':', 1)[0]}:***@{host}"
    query = "&".join(
        f"{name}=***" if name.lower() in SECRET_QUERY_KEYS else pair
        for pair in parts.query.split("&") if pair
        for name in [pair.split("=", 1)[0]])
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
