"""A real S3-compatible HTTP server (moto's server mode) on a free loopback port.

No object store is packaged for this machine; moto's server speaks the S3 REST API over HTTP,
so boto3 goes through its whole stack (signing, HTTP, XML) as against AWS, R2 or MinIO.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.support.redis_server import free_port

ACCESS_KEY = "test-access-key"


class S3Server:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = open(self.workdir / "moto.log", "wb")  # noqa: SIM115 - the process keeps it
        self.process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir)
        log.close()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"moto server exited: {(self.workdir / 'moto.log').read_text()}")
            try:
                httpx.get(self.endpoint + "/moto-api/", timeout=1)
                return
            except httpx.HTTPError:
                time.sleep(0.05)
        raise RuntimeError(f"moto server did not start on port {self.port}")

    def reset(self) -> None:
        """Empty every bucket (moto's own reset endpoint)."""
        httpx.post(self.endpoint + "/moto-api/reset", timeout=5).raise_for_status()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.process = None
