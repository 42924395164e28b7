"""Several real instances (`python -m uvicorn app.main:socket_app` processes) on one real
redis-server, each with its own port: the multi-instance behaviour, never simulated."""

from __future__ import annotations

import re
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from deploy.nginx_config import Site, nginx_command, write_standalone
from tests.e2e.conftest import connect, server_env  # noqa: F401 - connect: a fixture
from tests.support.app_server import AppServer, run_app_server
from tests.support.redis_server import free_port

Instances = Callable[..., list[AppServer]]
NGINX = "/usr/sbin/nginx"  # Debian's (`make system-deps`)


@pytest.fixture
def instances(redis_url: str, tmp_path: Path) -> Iterator[Instances]:
    """``instances(2, redis=None, **env)``: N started instances sharing the session's Redis (or
    ``redis``) and a channel of their own."""
    stack: list[Any] = []
    channel = f"test-{uuid.uuid4().hex[:8]}"

    def start(n: int, redis: str | None = None, **overrides: str) -> list[AppServer]:
        env = server_env(redis or redis_url, SOCKETIO_CHANNEL=channel, INSTANCE_TTL_SECONDS="2",
                         SPECULATIVE_RENDER="false", **overrides)
        started = []
        for _ in range(n):
            manager = run_app_server(tmp_path / f"instance{len(stack)}", env)
            started.append(manager.__enter__())
            stack.append(manager)
        return started

    yield start
    while stack:
        stack.pop().__exit__(None, None, None)


@pytest.fixture
def player(connect: Callable[..., Any]) -> Callable[..., Any]:  # noqa: F811 - the fixture
    """``await player(server, "Ada", token=None)``: the e2e suite's ``connect`` fixture."""
    return connect


@dataclass
class Nginx:
    base_url: str
    prefix: Path
    process: subprocess.Popen[bytes]

    def upstreams(self, path: str) -> list[str]:
        """The instances nginx tried, in order, for each logged request whose line holds
        ``path`` (the access log of deploy/nginx/standalone.conf.template)."""
        log = (self.prefix / "access.log").read_text()
        return [match.group(1) for line in log.splitlines() if path in line
                for match in [re.search(r" upstream=(\S+(?:, \S+)*) upstream_status", line)]
                if match]


Balancer = Callable[..., Nginx]


@pytest.fixture
def nginx(tmp_path: Path) -> Iterator[Balancer]:
    """``nginx(servers)``: Debian's nginx in front of ``servers`` with the configuration of
    deploy/nginx_config.py, on a free port. ``sticky=False`` deletes the ``hash`` line, only to
    show what stickiness is for."""
    started: list[subprocess.Popen[bytes]] = []

    def start(servers: list[AppServer], *, sticky: bool = True) -> Nginx:
        prefix = tmp_path / f"nginx{len(started)}"
        site = Site(f"127.0.0.1:{free_port()}",
                    [s.base_url.removeprefix("http://") for s in servers])
        conf = write_standalone(site, prefix)
        if not sticky:
            site_file = prefix / "punchline.conf"
            text = site_file.read_text()
            assert "    hash $remote_addr consistent;\n" in text
            site_file.write_text(text.replace("    hash $remote_addr consistent;\n", ""))
        process = subprocess.Popen(nginx_command(NGINX, conf), stdout=subprocess.DEVNULL,
                                   stderr=subprocess.STDOUT)
        started.append(process)
        balancer = Nginx(f"http://{site.listen}", prefix, process)
        deadline = time.monotonic() + 10
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"nginx exited: {(prefix / 'error.log').read_text()}")
            try:
                if httpx.get(f"{balancer.base_url}/health", timeout=1).status_code == 200:
                    return balancer
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"nginx did not answer: {(prefix / 'error.log').read_text()}")
            time.sleep(0.05)

    yield start
    for process in started:
        process.terminate()  # SIGTERM: nginx's fast shutdown
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
