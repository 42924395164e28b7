"""One settings object, read from the environment and `.env` (see `.env.example`)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from limits import parse as parse_rate
from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from redis.connection import parse_url

from app.core.redis_url import CLUSTER_SCHEMES, SENTINEL_SCHEMES, parse_multi_host, uses_tls


def _well_formed(name: str, url: str) -> str:
    """`url` if it parses (one server, or a Sentinel / Cluster node list); else a ValueError
    naming the setting, without the URL (it may hold a password)."""
    try:
        if urlsplit(url).scheme.endswith(("+sentinel", "+cluster")):
            parse_multi_host(url)
        else:
            parse_url(url)  # type: ignore[no-untyped-call]
    except ValueError as exc:
        raise ValueError(f"{name} is malformed: {exc}") from None
    return url


class Settings(BaseSettings):
    # hide_input_in_errors: a refused REDIS_URL may hold a password.
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore",
                                      hide_input_in_errors=True)

    # --- application -----------------------------------------------------------------------
    app_env: Literal["development", "test", "production"] = "development"
    log_level: str = "INFO"
    # "text" (the default; the spec's log lines) or "json" (one JSON object per line).
    log_format: Literal["text", "json"] = "text"
    # Token required by admin operations (purge, warm over HTTP). Empty disables them.
    admin_token: str = Field(default="", repr=False)
    data_dir: Path = Path("data")

    # --- HTTP ------------------------------------------------------------------------------
    # Browser origins allowed to call the REST routes and open Socket.IO connections, comma
    # separated (`https://play.example,http://localhost:5173`). Empty: the same origin only.
    # "*" is refused: list the origins.
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Proxies whose X-Forwarded-For / X-Forwarded-Proto are trusted (uvicorn's
    # --forwarded-allow-ips: addresses or networks, comma separated, or "*"); empty trusts none.
    forwarded_allow_ips: str = "127.0.0.1"
    # Request head size past which `python -m app.main` (make run) refuses a request (400).
    http_max_header_bytes: int = Field(default=65536, ge=4096)
    # Per client address, in the `limits` notation ("120/minute"); see app/core/ratelimit.py.
    http_rate_limit_rooms: str = "120/minute"  # GET /api/rooms/{code} (room-code guessing)
    http_rate_limit_admin: str = "60/minute"  # admin routes, any token
    admin_auth_failure_limit: str = "5/minute"  # wrong admin tokens, then 429 until it passes

    # --- Redis connection ------------------------------------------------------------------
    redis_url: str = Field(default="redis://localhost:6379", repr=False)
    # When set, overrides the database number given in REDIS_URL.
    redis_db: int | None = Field(default=None, ge=0, le=15)
    redis_connect_timeout: float = Field(default=0.25, gt=0, le=30)
    redis_socket_timeout: float = Field(default=0.25, gt=0, le=30)
    redis_max_connections: int = Field(default=512, ge=1)
    # TLS (rediss:// and rediss+cluster:// only): the CA that signed the server's certificate,
    # and the client's own certificate and key when the server asks for one (tls-auth-clients).
    redis_tls_ca_file: Path | None = None
    redis_tls_cert_file: Path | None = None
    redis_tls_key_file: Path | None = None
    # Permanent entries wait for one replica (WAIT 1 <ms>) when the primary has replicas, so a
    # failover cannot lose them; a write no replica confirms in time is re-written until one
    # does (docs/resilience.md). 0: off.
    redis_wait_ms: int = Field(default=100, ge=0, le=10_000)

    # --- video cache -----------------------------------------------------------------------
    cache_temporary_ttl: int = Field(default=86400, ge=1)
    # Bound of the in-process store (near cache + outage fallback).
    cache_memory_max_entries: int = Field(default=10_000, ge=1)
    # Serve repeated reads from the in-process near cache (invalidated by Redis tracking).
    cache_near_enabled: bool = True
    # Async calls arriving while a Redis round trip is in flight share the next one: at most
    # this many keys per MGET. 0 sends every call on its own (no batching).
    cache_batch_max_keys: int = Field(default=256, ge=0, le=100_000)
    # Recovery probe: capped exponential backoff with jitter between probes (seconds).
    cache_probe_base: float = Field(default=0.05, gt=0)
    cache_probe_max_interval: float = Field(default=2.0, gt=0, le=60)
    # fsync the outage journal: "always", "permanent" (only permanent entries) or "never".
    cache_journal_fsync: Literal["always", "permanent", "never"] = "permanent"
    # Seconds between checks that Redis still holds the index marker; when it is gone (Redis
    # restarted empty, FLUSHALL) one instance rebuilds the index from stored videos. 0: off.
    cache_index_check_interval: float = Field(default=2.0, ge=0)

    # --- videos ----------------------------------------------------------------------------
    video_dir: Path | None = None  # defaults to {data_dir}/videos
    video_public_prefix: str = "/videos"
    video_resolution: Literal["360p", "720p"] = "360p"
    video_provider: Literal["local", "http"] = "local"
    video_render_workers: int = Field(default=1, ge=1, le=16)
    # Where local renders run: worker processes (no GIL contention with the event loop) or threads.
    video_render_pool: Literal["process", "thread"] = "process"
    video_render_timeout: float = Field(default=60.0, gt=0)
    # Kept alive by its holder every third of it, so it only matters when the holder dies:
    # short, so a SIGKILLed worker's combination is free again within seconds.
    video_generation_lock_ttl: float = Field(default=10.0, gt=0)
    video_negative_ttl: float = Field(default=30.0, ge=0)
    # Backpressure: generations pending at once in this process, past which a new one is
    # refused (VideoBusyError) rather than queued: winners (permanent) up to the first bound,
    # temporary ones (speculative, pre-generation) up to the second, so they never keep a
    # winner waiting for long.
    video_max_pending: int = Field(default=256, ge=1)
    video_max_pending_temporary: int = Field(default=16, ge=0)
    video_narration: bool = True
    # Generic hosted-provider adapter (HttpProvider).
    http_provider_submit_url: str = ""
    http_provider_status_url: str = ""  # may contain {job_id}
    http_provider_cancel_url: str = ""  # may contain {job_id}
    http_provider_auth_header: str = "Authorization"
    http_provider_token: str = Field(default="", repr=False)
    http_provider_job_id_path: str = "id"
    http_provider_status_path: str = "status"
    http_provider_result_url_path: str = "output.url"
    http_provider_error_path: str = "error"
    http_provider_poll_interval: float = Field(default=1.0, gt=0)
    http_provider_deadline: float = Field(default=120.0, gt=0)
    http_provider_fallback_local: bool = True
    # Popularity-driven pre-generation.
    pregen_enabled: bool = True
    pregen_top_n: int = Field(default=20, ge=0)
    pregen_interval: float = Field(default=60.0, gt=0)
    pregen_max_per_run: int = Field(default=5, ge=0)
    # Seconds between sweeps of temporary videos (speculative, pre-generated) whose cache entry
    # has expired, and of dead renders' files (app/video/sweeper.py). 0: off.
    video_sweep_interval: float = Field(default=3600.0, ge=0)
    # --- render queue (app/video/queue*.py, app/worker) -------------------------------------
    # "embedded": this web process also runs a render worker on the durable queue (or in
    # memory with memory://). "external": it only enqueues; `python -m app.worker` renders.
    video_worker_mode: Literal["embedded", "external"] = "embedded"
    video_queue_name: str = Field(default="punchline-video", min_length=1, max_length=60)
    # The queue's own Redis (redis://, rediss://, redis+sentinel:// or rediss+sentinel://) when
    # it differs from REDIS_URL; needed to use the queue when REDIS_URL is a Cluster, where SAQ
    # cannot run (docs/videos.md). Empty: REDIS_URL.
    video_queue_redis_url: str = Field(default="", repr=False)
    video_worker_concurrency: int = Field(default=1, ge=1, le=16)  # jobs at once per worker
    # A job whose worker sent no heartbeat for this long is taken back (sweep every third).
    video_job_heartbeat: int = Field(default=6, ge=2, le=300)
    video_job_max_failures: int = Field(default=3, ge=1, le=20)  # render errors, then dead
    video_job_retry_delay: float = Field(default=1.0, gt=0)  # doubles per retry, up to 30 s
    video_queue_speculative_max: int = Field(default=32, ge=0)  # waiting; past it: dropped

    # --- video storage (app/video/storage.py, app/video/storage_s3.py) ------------------------
    # "local": the folder VIDEO_DIR (may be a shared volume). "s3": an S3-compatible bucket
    # (AWS S3, Cloudflare R2, MinIO); renders are staged in VIDEO_DIR, then uploaded.
    video_storage: Literal["local", "s3"] = "local"
    s3_bucket: str = ""
    s3_endpoint_url: str = ""  # empty: AWS; e.g. https://<account>.r2.cloudflarestorage.com
    s3_region: str = "us-east-1"  # R2: "auto"
    # Empty: boto3's own chain (AWS_* variables, instance or task role).
    s3_access_key_id: str = Field(default="", repr=False)
    s3_secret_access_key: str = Field(default="", repr=False)
    # Public or CDN base of the bucket's objects (https://cdn.example); cache entries then hold
    # https://cdn.example/<S3_PREFIX><sha>.mp4. Empty: the app's route redirects to a
    # presigned URL (private bucket).
    s3_public_base_url: str = ""
    s3_prefix: str = "videos/"  # object name prefix in the bucket
    s3_addressing_style: Literal["auto", "path", "virtual"] = "auto"  # MinIO: path

    # --- game ------------------------------------------------------------------------------
    extra_deck_paths: list[Path] = Field(default_factory=list)
    reconnect_grace_seconds: float = Field(default=60.0, ge=0)
    speculative_render: bool = True
    socket_rate_limit_per_second: float = Field(default=20.0, gt=0)
    socket_rate_limit_burst: int = Field(default=40, ge=1)
    # A room where nothing happened for this long is closed, its players told why.
    room_idle_seconds: float = Field(default=7200.0, gt=0)
    # Socket.IO's Redis pub/sub channel: instances on one Redis with the same channel share
    # their clients' emits (app/sockets/manager.py).
    socketio_channel: str = Field(default="punchline-socketio", min_length=1, max_length=100)
    # Socket.IO's pub/sub Redis when it differs from REDIS_URL (python-socketio has no Cluster
    # URL; with a redis+cluster:// REDIS_URL the default is its first node: app/sockets/manager.py).
    socketio_redis_url: str = Field(default="", repr=False)
    # An instance whose heartbeat is older than this is dead: others take over its seats.
    instance_ttl_seconds: float = Field(default=5.0, ge=1.0, le=300)
    # Per client address (docs/protocol.md). Defaults let a 200-client benchmark and a few
    # browsers share one address; a count for connections, `limits` rates for the rest.
    socket_max_connections_per_address: int = Field(default=256, ge=1)
    # Each instance refreshes its connections in Redis every third of this; a killed instance's
    # connections stop counting after it (app/sockets/connections.py).
    socket_connection_ttl_seconds: float = Field(default=30.0, ge=0.5, le=3600)
    socket_rooms_per_address: str = "120/minute"  # create_room
    socket_joins_per_address: str = "600/minute"  # join_room attempts (room-code guessing)

    @field_validator("redis_url")
    @classmethod
    def _check_redis_url(cls, url: str) -> str:
        """A malformed URL is a configuration error: refuse it at start-up, not per call."""
        scheme = urlsplit(url).scheme
        if scheme in {"memory", "mem"}:
            return url
        if scheme not in {"redis", "rediss", "unix", *SENTINEL_SCHEMES, *CLUSTER_SCHEMES}:
            raise ValueError("REDIS_URL must start with redis://, rediss://, unix://, "
                             "redis+sentinel://, rediss+sentinel://, redis+cluster://, "
                             "rediss+cluster:// or memory://")
        return _well_formed("REDIS_URL", url)

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("cors_origins")
    @classmethod
    def _check_origins(cls, origins: list[str]) -> list[str]:
        cleaned = []
        for origin in origins:
            origin = origin.rstrip("/")
            parts = urlsplit(origin)
            if origin == "*" or parts.scheme not in {"http", "https"} or not parts.hostname \
                    or parts.path or parts.query or parts.fragment or "*" in origin:
                raise ValueError(f"CORS_ORIGINS: {origin!r} is not an origin like "
                                 "https://play.example or http://localhost:5173 (no wildcard)")
            cleaned.append(origin)
        return cleaned

    @field_validator("http_rate_limit_rooms", "http_rate_limit_admin", "admin_auth_failure_limit",
                     "socket_rooms_per_address", "socket_joins_per_address")
    @classmethod
    def _check_rate(cls, rate: str) -> str:
        try:
            parse_rate(rate)
        except ValueError:
            raise ValueError(f"{rate!r} is not a rate like 10/minute") from None
        return rate

    @field_validator("redis_tls_ca_file", "redis_tls_cert_file", "redis_tls_key_file",
                     mode="before")
    @classmethod
    def _empty_path_is_none(cls, value: object) -> object:
        return None if value == "" else value  # `REDIS_TLS_CA_FILE=` in .env: not set

    @field_validator("socketio_redis_url")
    @classmethod
    def _check_socketio_redis_url(cls, url: str) -> str:
        scheme = urlsplit(url).scheme
        if url and scheme not in {"redis", "rediss", "unix", "redis+sentinel", "rediss+sentinel"}:
            raise ValueError("SOCKETIO_REDIS_URL must start with redis://, rediss://, unix://, "
                             "redis+sentinel:// or rediss+sentinel:// (python-socketio has no "
                             "Cluster URL; any one cluster node's classic Pub/Sub is "
                             "cluster-wide)")
        return url

    @field_validator("video_queue_redis_url")
    @classmethod
    def _check_video_queue_redis_url(cls, url: str) -> str:
        scheme = urlsplit(url).scheme
        if not url:
            return url
        if scheme in CLUSTER_SCHEMES:
            raise ValueError("VIDEO_QUEUE_REDIS_URL cannot be a Cluster: the render queue (SAQ) "
                             "needs one server or a Sentinel service; give a redis://, rediss://, "
                             "redis+sentinel:// or rediss+sentinel:// URL (docs/videos.md)")
        if scheme not in {"redis", "rediss", "unix", *SENTINEL_SCHEMES}:
            raise ValueError("VIDEO_QUEUE_REDIS_URL must start with redis://, rediss://, unix://, "
                             "redis+sentinel:// or rediss+sentinel://")
        return _well_formed("VIDEO_QUEUE_REDIS_URL", url)

    @model_validator(mode="after")
    def _check_redis_cluster_db(self) -> Settings:
        if urlsplit(self.redis_url).scheme in CLUSTER_SCHEMES and self.redis_db:
            raise ValueError("REDIS_DB must be unset or 0 with redis+cluster:// (Cluster has "
                             "only database 0)")
        return self

    @model_validator(mode="after")
    def _check_redis_tls(self) -> Settings:
        files = {"REDIS_TLS_CA_FILE": self.redis_tls_ca_file,
                 "REDIS_TLS_CERT_FILE": self.redis_tls_cert_file,
                 "REDIS_TLS_KEY_FILE": self.redis_tls_key_file}
        given = {name: path for name, path in files.items() if path is not None}
        if given and not uses_tls(self.redis_url):
            raise ValueError(f"{', '.join(given)} apply to rediss+cluster://, "
                             "rediss+sentinel:// and rediss:// URLs only")
        for name, path in given.items():
            if not path.is_file():
                raise ValueError(f"{name}: {path} is not a readable file")
        if (self.redis_tls_cert_file is None) != (self.redis_tls_key_file is None):
            raise ValueError("REDIS_TLS_CERT_FILE and REDIS_TLS_KEY_FILE go together")
        return self

    @field_validator("s3_public_base_url", "s3_endpoint_url")
    @classmethod
    def _check_s3_url(cls, url: str) -> str:
        parts = urlsplit(url)
        if url and (parts.scheme not in {"http", "https"} or not parts.hostname
                    or parts.query or parts.fragment):
            raise ValueError(f"{url!r} is not an http(s) URL like https://cdn.example")
        return url.rstrip("/")

    @field_validator("s3_prefix")
    @classmethod
    def _normalise_s3_prefix(cls, prefix: str) -> str:
        prefix = prefix.strip("/")
        return prefix + "/" if prefix else ""

    @model_validator(mode="after")
    def _require_s3_bucket(self) -> Settings:
        if self.video_storage == "s3" and not self.s3_bucket:
            raise ValueError("S3_BUCKET must be set when VIDEO_STORAGE=s3")
        return self

    @model_validator(mode="after")
    def _refuse_unsafe_production(self) -> Settings:
        if self.app_env == "production" and self.admin_token in {"", "changeme"}:
            raise ValueError("ADMIN_TOKEN must be set to a real secret when APP_ENV=production")
        return self

    @property
    def resolved_video_dir(self) -> Path:
        return self.video_dir if self.video_dir is not None else self.data_dir / "videos"

    @property
    def journal_path(self) -> Path:
        return self.data_dir / "cache-journal.jsonl"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
