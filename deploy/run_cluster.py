"""`make run-cluster N=2`: N local instances on one Redis, with nginx in front. Ctrl-C stops all.

Instance i is `python -m app.main` on 127.0.0.1:(PORT+i); nginx listens on HOST:PORT with the
configuration of deploy/nginx_config.py, rendered into a temporary folder that also holds its
pid, logs and temporary files. The instances share REDIS_URL (state and events) and the video
folder; each keeps its own DATA_DIR, because the cache's outage journal is one per process.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import IO

import httpx

from app.core.config import Settings, get_settings
from deploy.nginx_config import Site, nginx_command, write_standalone

REPO = Path(__file__).resolve().parents[1]
NGINX_PATHS = ("/usr/sbin/nginx", "/usr/local/sbin/nginx")
STARTUP_SECONDS = 60.0
STOP_SECONDS = 15.0


def say(message: str) -> None:
    sys.stderr.write(f"run-cluster: {message}\n")
    sys.stderr.flush()


def find_nginx() -> str | None:
    return shutil.which("nginx") or next((p for p in NGINX_PATHS if os.access(p, os.X_OK)), None)


def redis_problem(settings: Settings) -> str | None:
    """Why the instances could not share state through REDIS_URL, or None when Redis answers."""
    from app.cache.connection import sync_client

    if settings.redis_url.startswith("memory://"):
        return "REDIS_URL is memory://"
    try:
        client = sync_client(settings, socket_connect_timeout=2, socket_timeout=2)
        try:
            client.ping()
        finally:
            client.close()
    except Exception as exc:  # any failure means the same thing here: no shared state
        return f"Redis does not answer ({type(exc).__name__}: {exc})"
    return None


def relay(stream: IO[bytes], label: str) -> None:
    """Copy a child's output to ours, each line prefixed with the child's name."""
    for line in iter(stream.readline, b""):
        sys.stdout.write(f"[{label}] {line.decode(errors='replace')}")
        sys.stdout.flush()


class Children:
    """The started processes, in their own sessions: Ctrl-C reaches this script alone, and it
    stops them in order (nginx first, so no new client lands on a stopping instance)."""

    def __init__(self) -> None:
        self.started: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, label: str, command: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, start_new_session=True)
        assert process.stdout is not None
        threading.Thread(target=relay, args=(process.stdout, label), daemon=True).start()
        self.started.append((label, process))
        return process

    def exited(self) -> str | None:
        return next((f"{label} exited with code {p.returncode}"
                     for label, p in self.started if p.poll() is not None), None)

    def stop(self) -> None:
        for _, process in reversed(self.started):  # nginx was started last
            if process.poll() is None:
                process.terminate()
        deadline = time.monotonic() + STOP_SECONDS
        for label, process in self.started:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                say(f"{label} did not stop in {STOP_SECONDS:.0f} s: killed")
                process.kill()
                process.wait()


def wait_healthy(url: str, process: subprocess.Popen[bytes], label: str) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{label} exited during start-up (code {process.returncode})")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{label} did not answer /health in {STARTUP_SECONDS:.0f} s")


@contextmanager
def stop_on_sigterm() -> Iterator[None]:
    """SIGTERM (a supervisor, `kill`) stops the cluster like Ctrl-C does."""
    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run(instances: int, host: str, port: int) -> int:
    settings = get_settings()
    if (problem := redis_problem(settings)) is not None:
        say(f"{problem}: several instances cannot share rooms without Redis. Start Redis "
            "(or set REDIS_URL), or run one instance with `make run`.")
        return 1
    nginx = find_nginx()
    if nginx is None:
        say("nginx is not installed: `make system-deps` as root, or apt-get install nginx")
        return 1
    ports = [port + 1 + i for i in range(instances)]
    prefix = Path(tempfile.mkdtemp(prefix="punchline-cluster-"))
    conf = write_standalone(
        Site(f"{host}:{port}", [f"127.0.0.1:{p}" for p in ports],
             max_header_bytes=settings.http_max_header_bytes), prefix)
    data_dir = settings.data_dir.resolve()
    children = Children()
    failed = False
    with stop_on_sigterm():
        try:
            for p in ports:
                env = {**os.environ, "DATA_DIR": str(data_dir / "cluster" / f"instance-{p}"),
                       "VIDEO_DIR": str(settings.resolved_video_dir.resolve())}
                process = children.start(str(p), [sys.executable, "-m", "app.main",
                                                  "--host", "127.0.0.1", "--port", str(p)], env)
                wait_healthy(f"http://127.0.0.1:{p}", process, f"instance {p}")
            children.start("nginx", nginx_command(nginx, conf), dict(os.environ))
            wait_healthy(f"http://{host}:{port}", children.started[-1][1], "nginx")
            say(f"http://{host}:{port} -> {instances} instances on ports "
                f"{ports[0]}..{ports[-1]}; nginx files in {prefix}. Ctrl-C stops everything.")
            while (why := children.exited()) is None:
                time.sleep(0.5)
            say(f"{why}: stopping the others")
            failed = True
        except KeyboardInterrupt:
            say("stopping")
        except RuntimeError as exc:
            say(str(exc))
            failed = True
        finally:
            children.stop()
    if failed:
        say(f"nginx configuration and logs kept in {prefix}")
        return 1
    shutil.rmtree(prefix, ignore_errors=True)
    return 0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m deploy.run_cluster",
                                     description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--instances", "-n", type=int, default=2)
    parser.add_argument("--host", default="127.0.0.1", help="nginx's address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000,
                        help="nginx's port; the instances take the next ones (default 8000)")
    args = parser.parse_args(argv)
    if not 1 <= args.instances <= 32:
        parser.error("--instances must be between 1 and 32")
    if not 1 <= args.port <= 65535 - args.instances:
        parser.error("--port leaves no room for the instances' ports")
    sys.exit(run(args.instances, args.host, args.port))


if __name__ == "__main__":
    main()
