"""REDIS_URL forms past one server: Sentinel, Cluster (plain and TLS), TLS settings."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from app.cache.connection import effective_url, redis_target, tls_options
from app.core.config import Settings
from app.core.redis_url import mask_url, parse_multi_host, topology_of, with_db


def test_sentinel_url_in_python_socketio_format() -> None:
    address = parse_multi_host("redis+sentinel://user:p%40ss@h1:26380,[::1]:26381,h3/2/mymaster")
    assert address.topology == "sentinel" and address.service == "mymaster" and address.db == 2
    assert address.nodes == (("h1", 26380), ("::1", 26381), ("h3", 26379))
    assert (address.username, address.password) == ("user", "p@ss")
    assert "p@ss" not in repr(address)


def test_cluster_url_is_parsed() -> None:
    address = parse_multi_host("redis+cluster://:pw@n1:7000,n2:7001")
    assert address.topology == "cluster" and address.nodes == (("n1", 7000), ("n2", 7001))
    assert address.password == "pw" and address.service is None


@pytest.mark.parametrize(("url", "message"), [
    ("redis+sentinel://h1:26379/0", "service_name"),
    ("redis+sentinel://h1:26379", "service_name"),
    ("redis+sentinel://h1:2x/0/m", "not a port"),
    ("redis+sentinel://h1:1,/0/m", "host is missing"),
    ("redis+sentinel://h1:1/16/m", "0 to 15"),
    ("redis+sentinel://h1:1/0/m?ssl=1", "no [?]options"),
    ("redis+cluster://h1:1/3", "only db 0"),
])
def test_bad_multi_host_urls_are_refused(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_multi_host(url)


def test_settings_accept_sentinel_and_cluster_and_refuse_bad_ones_without_the_password(
        ) -> None:
    url = "redis+sentinel://:topsecret@h1:26379,h2:26379/0/mymaster"
    assert Settings(_env_file=None, redis_url=url).redis_url == url
    cluster = "redis+cluster://:topsecret@h1:7000,h2:7001"
    assert Settings(_env_file=None, redis_url=cluster).redis_url == cluster
    with pytest.raises(ValidationError, match="only db 0") as raised:
        Settings(_env_file=None, redis_url="redis+cluster://:topsecret@h1:7000/2")
    assert "topsecret" not in str(raised.value)
    with pytest.raises(ValidationError, match="service_name") as raised:
        Settings(_env_file=None, redis_url="redis+sentinel://:topsecret@h1:26379/0")
    assert "topsecret" not in str(raised.value)


@pytest.mark.parametrize(("url", "masked"), [
    ("redis+sentinel://u:pw@h1:1,h2:2/0/m", "redis+sentinel://u:***@h1:1,h2:2/0/m"),
    ("redis+sentinel://:p@w@h1:1,h2:2/0/m", "redis+sentinel://:***@h1:1,h2:2/0/m"),
    ("redis+cluster://:pw@[::1]:7000,n2:7001", "redis+cluster://:***@[::1]:7000,n2:7001"),
])
def test_mask_url_with_several_hosts(url: str, masked: str) -> None:
    assert mask_url(url) == masked


def test_redis_db_overrides_the_sentinel_database() -> None:
    settings = Settings(_env_file=None, redis_url="redis+sentinel://h:1/5/svc", redis_db=3)
    assert effective_url(settings) == "redis+sentinel://h:1/3/svc"
    assert with_db("redis://h:1/5", 2) == "redis://h:1/2"
    assert topology_of("rediss://h") == "standalone" and topology_of("memory://") == "memory"


def test_journal_target_names_the_sentinel_service_not_the_master() -> None:
    one = Settings(_env_file=None, redis_url="redis+sentinel://:a@h1:1,h2:2/0/svc")
    same = Settings(_env_file=None, redis_url="redis+sentinel://:b@h2:2,h1:1/0/svc")
    other = Settings(_env_file=None, redis_url="redis+sentinel://h1:1,h2:2/0/other")
    assert redis_target(one) == redis_target(same) != redis_target(other)


def test_tls_files_need_rediss_and_exist(tmp_path: Path) -> None:
    ca = tmp_path / "ca.crt"
    ca.write_text("x")
    settings = Settings(_env_file=None, redis_url="rediss://h:6380", redis_tls_ca_file=ca)
    assert tls_options(settings) == {"ssl_ca_certs": str(ca)}
    with pytest.raises(ValidationError, match="rediss:// URLs only"):
        Settings(_env_file=None, redis_url="redis://h", redis_tls_ca_file=ca)
    with pytest.raises(ValidationError, match="not a readable file"):
        Settings(_env_file=None, redis_url="rediss://h", redis_tls_ca_file=tmp_path / "none")
    with pytest.raises(ValidationError, match="go together"):
        Settings(_env_file=None, redis_url="rediss://h", redis_tls_cert_file=ca)
