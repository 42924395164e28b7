"""The real server in a subprocess on a free port: the spec's command
(`python -m uvicorn app.main:socket_app`) or `make run`'s (`python -m app.main`)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.support.redis_server import free_port

REPO = Path(__file__).resolve().parents[2]


@dataclass
class AppServer:
    base_url: str
    log_path: Path
    process: subprocess.Popen[bytes]

    @property
    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")


SPEC_COMMAND = ("-m", "uvicorn", "app.main:socket_app")
MAKE_RUN_COMMAND = ("-m", "app.main")  # what `make run` starts: the settings' server options


def start_app_server(workdir: Path, env: dict[str, str], startup_deadline: float = 30.0,
                     command: tuple[str, ...] = SPEC_COMMAND) -> AppServer:
    """Start the server and wait until /health answers; the caller stops the process."""
    port = free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    log_path = workdir / "server.log"
    full_env = {**os.environ, "DATA_DIR": str(workdir / "data"), "PYTHONPATH": str(REPO),
                "PREGEN_ENABLED": "false", **env}
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, *command, "--host", "127.0.0.1", "--port", str(port)],
            cwd=REPO, env=full_env, stdout=log, stderr=subprocess.STDOUT)
    server = AppServer(f"http://127.0.0.1:{port}", log_path, process)
    deadline = time.monotonic() + startup_deadline
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"server exited early:\n{server.log}")
        try:
            if httpx.get(f"{server.base_url}/health", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            process.kill()
            process.wait()
            raise RuntimeError(f"server did not start:\n{server.log}")
        time.sleep(0.1)


@contextmanager
def run_app_server(workdir: Path, env: dict[str, str], startup_deadline: float = 30.0,
                   command: tuple[str, ...] = SPEC_COMMAND) -> Iterator[AppServer]:
    server = start_app_server(workdir, env, startup_deadline, command)
    try:
        yield server
    finally:
        server.process.terminate()
        try:
            server.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()
