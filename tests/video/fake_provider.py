"""A fake hosted video API on a real loopback HTTP server (aiohttp), scripted per test."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.support.redis_server import free_port


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: Any = None


@dataclass
class FakeProvider:
    video: bytes
    statuses: list[str] = field(default_factory=lambda: ["queued", "running", "succeeded"])
    submit_errors: list[int] = field(default_factory=list)  # answered before accepting
    status_errors: list[int] = field(default_factory=list)
    download_errors: list[int] = field(default_factory=list)
    download_status: int = 200  # e.g. 404 once the result URL expired
    retry_after: str | None = None
    error: str = "content policy violation"
    result_host: str | None = None  # serve the result from another origin
    seen: list[Seen] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    polls: dict[str, int] = field(default_factory=dict)
    port: int = 0
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _runner: web.AppRunner | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def settings(self) -> dict[str, Any]:
        return {
            "video_provider": "http",
            "http_provider_submit_url": f"{self.base}/v1/jobs",
            "http_provider_status_url": f"{self.base}/v1/jobs/{{job_id}}",
            "http_provider_cancel_url": f"{self.base}/v1/jobs/{{job_id}}/cancel",
            "http_provider_token": "sekret",
            "http_provider_job_id_path": "id",
            "http_provider_status_path": "status",
            "http_provider_result_url_path": "output.url",
            "http_provider_error_path": "error.message",
            "http_provider_poll_interval": 0.01,
            "http_provider_deadline": 10.0,
            "http_provider_fallback_local": False,
        }

    def requests_to(self, prefix: str, method: str | None = None) -> list[Seen]:
        return [s for s in self.seen if s.path.startswith(prefix)
                and (method is None or s.method == method)]

    def _error(self, queue: list[int]) -> web.Response | None:
        if not queue:
            return None
        headers = {"Retry-After": self.retry_after} if self.retry_after else {}
        return web.json_response({"error": "try later"}, status=queue.pop(0), headers=headers)

    def _job(self, job_id: str) -> dict[str, Any]:
        index = min(self.polls.get(job_id, 0), len(self.statuses) - 1)
        status = self.statuses[index]
        job: dict[str, Any] = {"id": job_id, "status": status}
        if status == "succeeded":
            host = self.result_host or "127.0.0.1"
            job["output"] = {"url": f"http://{host}:{self.port}/files/{job_id}.mp4"}
        if status == "failed":
            job["error"] = {"message": self.error}
        return job

    async def submit(self, request: web.Request) -> web.Response:
        self.seen.append(Seen("POST", request.path, dict(request.headers), await request.json()))
        if (error := self._error(self.submit_errors)) is not None:
            return error
        job_id = f"job-{next(self._ids)}"
        self.polls[job_id] = 0
        return web.json_response(self._job(job_id), status=201)

    async def status(self, request: web.Request) -> web.Response:
        self.seen.append(Seen("GET", request.path, dict(request.headers)))
        if (error := self._error(self.status_errors)) is not None:
            return error
        job_id = request.match_info["job_id"]
        self.polls[job_id] = self.polls.get(job_id, 0) + 1
        return web.json_response(self._job(job_id))

    async def cancel(self, request: web.Request) -> web.Response:
        self.seen.append(Seen("POST", request.path, dict(request.headers)))
        self.cancelled.append(request.match_info["job_id"])
        return web.json_response({"status": "cancelled"})

    async def download(self, request: web.Request) -> web.StreamResponse:
        self.seen.append(Seen("GET", request.path, dict(request.headers)))
        if (error := self._error(self.download_errors)) is not None:
            return error
        if self.download_status != 200:
            return web.Response(status=self.download_status, text="AccessDenied: URL expired")
        return web.Response(body=self.video, content_type="video/mp4")

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/jobs", self.submit)
        app.router.add_get("/v1/jobs/{job_id}", self.status)
        app.router.add_post("/v1/jobs/{job_id}/cancel", self.cancel)
        app.router.add_get("/files/{name}", self.download)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        self.port = free_port()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
