"""`HttpProvider`: a generic adapter for hosted AI video APIs (submit, poll, download).

The flow, all before one deadline (`http_provider_deadline`):

1. POST the request to `http_provider_submit_url` with an `Idempotency-Key` derived from the cache
   key, so a retried submit (or another instance submitting the same combination) does not pay
   for a second job. The job id is read at `http_provider_job_id_path` of the JSON answer.
2. GET `http_provider_status_url` every `http_provider_poll_interval` until the status (at
   `http_provider_status_path`) is a success or a failure state.
3. Download the result (URL at `http_provider_result_url_path`) into our storage: provider URLs
   expire, so only our own copy is ever cached.

429 and 5xx answers and transport errors are retried with capped exponential backoff and jitter,
honouring `Retry-After`. At the deadline the job is cancelled (`http_provider_cancel_url`).
With `http_provider_fallback_local`, any provider failure falls back to the local renderer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from app.core.config import Settings
from app.video.backoff import Backoff, parse_retry_after
from app.video.errors import (
    ProviderError,
    ProviderJobFailed,
    ProviderResultExpired,
    ProviderTimeoutError,
)
from app.video.provider import VideoProvider, VideoRequest
from app.video.render import RESOLUTIONS

logger = logging.getLogger(__name__)

PENDING = {"queued", "pending", "starting", "submitted", "processing", "running", "in_progress",
           "in-progress", "started", "waiting"}
SUCCEEDED = {"succeeded", "success", "successful", "completed", "complete", "done", "finished",
             "ready"}
FAILED = {"failed", "failure", "error", "errored", "canceled", "cancelled", "rejected", "expired"}
RETRYABLE_STATUS = {408, 409, 425, 429}
EXPIRED_STATUS = {401, 403, 404, 410}
MAX_DOWNLOAD_BYTES = 512 * 1024 * 1024
# Upper bound of one HTTP exchange; the overall deadline still applies.
REQUEST_TIMEOUT = 30.0
CANCEL_TIMEOUT = 5.0


def json_path(data: Any, path: str) -> Any:
    """Follow a dotted path ("output.url", "data.0.url", "items[0].url"); None when missing."""
    current = data
    for part in path.replace("[", ".").replace("]", "").split("."):
        if not part:
            continue
        if isinstance(current, dict):
            current = current.get(part)
        elif isinstance(current, list) and part.lstrip("-").isdigit():
            index = int(part)
            current = current[index] if -len(current) <= index < len(current) else None
        else:
            return None
        if current is None:
            return None
    return current


def idempotency_key(request: VideoRequest) -> str:
    return f"punchline-{request.sha256}"


class HttpProvider:
    name = "http"

    def __init__(
        self,
        settings: Settings,
        *,
        fallback: VideoProvider | None = None,
        client: httpx.AsyncClient | None = None,
        backoff: Backoff | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.settings = settings
        self.fallback = fallback
        self._client = client
        self._own_client = client is None
        self.backoff = backoff or Backoff()
        self.clock = clock
        self.sleep = sleep
        self.fallbacks = 0
        self.retries = 0
        self.cancelled_jobs = 0
        if not settings.http_provider_submit_url:
            logger.warning("video_provider=http but HTTP_PROVIDER_SUBMIT_URL is empty")

    # --- plumbing -----------------------------------------------------------------------------
    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(follow_redirects=True)
        return self._client

    def _auth_headers(self, url: str) -> dict[str, str]:
        """The auth header, only for the provider's own origin (never for a CDN result URL)."""
        s = self.settings
        if not s.http_provider_token:
            return {}
        own = urlsplit(s.http_provider_submit_url)
        target = urlsplit(url)
        if (own.scheme, own.netloc) != (target.scheme, target.netloc):
            return {}
        token = s.http_provider_token
        if s.http_provider_auth_header.lower() == "authorization" and " " not in token:
            token = f"Bearer {token}"
        return {s.http_provider_auth_header: token}

    def _remaining(self, deadline: float) -> float:
        remaining = deadline - self.clock()
        if remaining <= 0:
            raise ProviderTimeoutError("the provider did not deliver before the deadline")
        return remaining

    async def _pause(self, seconds: float, deadline: float) -> None:
        if self.clock() + seconds >= deadline:
            raise ProviderTimeoutError("the provider did not deliver before the deadline")
        await self.sleep(seconds)

    def _retry_delay(self, response: httpx.Response | None, attempt: int) -> float:
        header = None if response is None else response.headers.get("retry-after")
        hinted = parse_retry_after(header)
        return hinted if hinted is not None else self.backoff.delay(attempt)

    async def _request(
        self, method: str, url: str, deadline: float, **kwargs: Any
    ) -> httpx.Response:
        """One logical request: retried on 429/5xx/transport errors until the deadline."""
        attempt = 0
        headers = {**self._auth_headers(url), **kwargs.pop("headers", {})}
        while True:
            timeout = min(REQUEST_TIMEOUT, self._remaining(deadline))
            response: httpx.Response | None = None
            try:
                response = await self.client.request(
                    method, url, headers=headers, timeout=timeout, **kwargs
                )
            except httpx.TransportError as exc:
                logger.info("provider %s %s failed (%s); retrying", method, url, type(exc).__name__)
            else:
                code = response.status_code
                if code < 500 and code not in RETRYABLE_STATUS:
                    return response
                logger.info("provider %s %s answered %d; retrying", method, url, code)
            self.retries += 1
            await self._pause(self._retry_delay(response, attempt), deadline)
            attempt += 1

    @staticmethod
    def _json(response: httpx.Response, what: str) -> Any:
        try:
            return response.json()
        except ValueError as exc:
            raise ProviderError(f"the provider's {what} answer is not JSON") from exc

    # --- the flow -----------------------------------------------------------------------------
    async def generate(self, request: VideoRequest, dest: Path) -> None:
        try:
            await self._generate(request, dest)
        except ProviderError as exc:
            if self.fallback is None:
                raise
            self.fallbacks += 1
            logger.warning("video provider failed for %s (%s); rendering locally instead",
                           request.sha256[:12], exc)
            with contextlib.suppress(FileNotFoundError):
                dest.unlink()
            await self.fallback.generate(request, dest)

    async def _generate(self, request: VideoRequest, dest: Path) -> None:
        s = self.settings
        if not s.http_provider_submit_url:
            raise ProviderError("HTTP_PROVIDER_SUBMIT_URL is not configured")
        deadline = self.clock() + s.http_provider_deadline
        job_id, answer = await self._submit(request, deadline)
        try:
            result_url = await self._poll(job_id, answer, deadline)
            await self._download(result_url, dest, deadline)
        except ProviderTimeoutError:
            await self._cancel(job_id)
            raise
        except asyncio.CancelledError:
            await asyncio.shield(self._cancel(job_id))
            raise

    async def _submit(self, request: VideoRequest, deadline: float) -> tuple[str, Any]:
        width, height = RESOLUTIONS[request.resolution]
        body = {
            "prompt": request.text,
            "black_card": request.black_card,
            "white_cards": list(request.white_cards),
            "resolution": request.resolution,
            "width": width,
            "height": height,
        }
        response = await self._request(
            "POST", self.settings.http_provider_submit_url, deadline, json=body,
            headers={"Idempotency-Key": idempotency_key(request)},
        )
        if response.status_code >= 400:
            raise ProviderError(f"the provider refused the job: HTTP {response.status_code} "
                                f"{response.text[:200]!r}")
        answer = self._json(response, "submit")
        job_id = json_path(answer, self.settings.http_provider_job_id_path)
        if not isinstance(job_id, str | int) or job_id == "":
            raise ProviderError(f"no job id at {self.settings.http_provider_job_id_path!r}")
        logger.info("provider job %s submitted for %s", job_id, request.sha256[:12])
        return str(job_id), answer

    def _status_of(self, answer: Any) -> tuple[str, str | None]:
        s = self.settings
        status = str(json_path(answer, s.http_provider_status_path) or "").strip().lower()
        url = json_path(answer, s.http_provider_result_url_path)
        return status, url if isinstance(url, str) and url else None

    async def _poll(self, job_id: str, answer: Any, deadline: float) -> str:
        s = self.settings
        status_url = (s.http_provider_status_url or s.http_provider_submit_url.rstrip("/")
                      + "/{job_id}").replace("{job_id}", quote(job_id, safe=""))
        while True:
            status, url = self._status_of(answer)
            if status in SUCCEEDED:
                if url is None:
                    raise ProviderError(f"job {job_id} succeeded without a result URL at "
                                        f"{s.http_provider_result_url_path!r}")
                return url
            if status in FAILED:
                error = json_path(answer, s.http_provider_error_path)
                raise ProviderJobFailed(f"job {job_id} {status}: {error or 'no error given'}")
            if status and status not in PENDING:
                logger.warning("unknown provider status %r for job %s; still polling", status,
                               job_id)
            await self._pause(s.http_provider_poll_interval, deadline)
            response = await self._request("GET", status_url, deadline)
            if response.status_code >= 400:
                raise ProviderError(f"status of job {job_id}: HTTP {response.status_code}")
            answer = self._json(response, "status")

    async def _download(self, url: str, dest: Path, deadline: float) -> None:
        attempt = 0
        while True:
            timeout = min(REQUEST_TIMEOUT, self._remaining(deadline))
            try:
                async with self.client.stream(
                    "GET", url, headers=self._auth_headers(url), timeout=timeout
                ) as response:
                    code = response.status_code
                    if code in EXPIRED_STATUS:
                        raise ProviderResultExpired(f"the result URL answered HTTP {code}")
                    if code == 200:
                        await self._save(response, dest)
                        return
                    if code < 500 and code not in RETRYABLE_STATUS:
                        raise ProviderError(f"downloading the result: HTTP {code}")
                    delay = self._retry_delay(response, attempt)
            except httpx.TransportError as exc:
                logger.info("result download failed (%s); retrying", type(exc).__name__)
                delay = self.backoff.delay(attempt)
            self.retries += 1
            await self._pause(delay, deadline)
            attempt += 1

    @staticmethod
    async def _save(response: httpx.Response, dest: Path) -> None:
        size = 0
        with open(dest, "wb") as fh:
            async for chunk in response.aiter_bytes(64 * 1024):
                size += len(chunk)
                if size > MAX_DOWNLOAD_BYTES:
                    raise ProviderError("the result is larger than the download limit")
                fh.write(chunk)

    async def _cancel(self, job_id: str) -> None:
        template = self.settings.http_provider_cancel_url
        if not template:
            return
        url = template.replace("{job_id}", quote(job_id, safe=""))
        try:
            response = await self.client.post(url, headers=self._auth_headers(url),
                                              timeout=CANCEL_TIMEOUT)
            self.cancelled_jobs += 1
            logger.info("provider job %s cancelled (HTTP %d)", job_id, response.status_code)
        except httpx.HTTPError:
            logger.warning("could not cancel provider job %s", job_id, exc_info=True)

    async def aclose(self) -> None:
        if self._client is not None and self._own_client:
            await self._client.aclose()
        self._client = None
        if self.fallback is not None:
            await self.fallback.aclose()
