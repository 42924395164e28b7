"""Published videos in an S3-compatible bucket (AWS S3, Cloudflare R2, MinIO), with boto3.

    VIDEO_STORAGE=s3 S3_BUCKET=punchline S3_PUBLIC_BASE_URL=https://cdn.example

Objects are named like the files of the local folder, under `S3_PREFIX`:
`<prefix><sha>.mp4`, `.png` (poster), `.json` (sidecar) and `.winner.json` (gallery record).
The name is the content address, so a retried upload rewrites the same object: idempotent.
Renders are staged in the local folder (`directory`: the provider writes a file, the poster is
cut from it) and uploaded with one `PutObject` each, never multipart, so an object is either
absent or whole and no half-finished upload is ever left in the bucket. The sidecar goes last:
a video without one is an orphan that `reindex` skips and a retry completes.

URLs: with `S3_PUBLIC_BASE_URL`, cache entries hold `<base>/<prefix><sha>.mp4` and players
fetch from the bucket or CDN directly; the app's own `/videos/<sha>.mp4` (older entries)
redirects there. Without it (a private bucket) entries hold the app's URL, which redirects to
a presigned URL valid for `PRESIGN_SECONDS`.

boto3 is synchronous and its clients are thread-safe, like the rest of the storage: call it
through `asyncio.to_thread`. Every botocore error becomes an `ObjectStoreError`.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from app.video.errors import StorageError
from app.video.poster import last_frame_png
from app.video.storage import SHA_RE, VideoMeta, VideoStorage, probe_mp4, sha_of_key

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from app.core.config import Settings

logger = logging.getLogger(__name__)

PRESIGN_SECONDS = 3600
IMMUTABLE = "public, max-age=31536000, immutable"  # the name is a content hash
EXISTS_TTL = 300.0  # seconds a HEAD that found a video is trusted
EXISTS_MAX = 10_000
LIST_WORKERS = 16  # parallel sidecar reads when listing (reindex)
_NOT_FOUND = {"404", "NoSuchKey", "NotFound"}


class ObjectStoreError(StorageError, OSError):
    """The object store refused or failed a request. An OSError too, so that the callers that
    tolerate a full disk (a lost `mark_permanent`) tolerate an unreachable bucket alike."""


def _not_found(exc: ClientError) -> bool:
    return str(exc.response.get("Error", {}).get("Code", "")) in _NOT_FOUND


@contextlib.contextmanager
def _mapped(what: str) -> Iterator[None]:
    """botocore's errors, mapped once. The message holds the error code, never a credential
    (the secret key is never sent: requests carry a signature)."""
    try:
        yield
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "?")
        raise ObjectStoreError(f"{what}: {code}") from exc
    except BotoCoreError as exc:
        raise ObjectStoreError(f"{what}: {type(exc).__name__}") from exc


def make_client(settings: Settings, *, attempts: int = 4) -> S3Client:
    """A boto3 S3 client for the settings. Empty credentials use boto3's own chain."""
    config = Config(
        signature_version="s3v4",  # presigned URLs too: R2 accepts SigV4 only
        connect_timeout=3, read_timeout=20,
        retries={"max_attempts": attempts, "mode": "standard"},
        s3={"addressing_style": settings.s3_addressing_style},
    )
    session = boto3.session.Session()
    return session.client(
        "s3",
        endpoint_url=settings.s3_endpoint_url or None,
        region_name=settings.s3_region or None,
        aws_access_key_id=settings.s3_access_key_id or None,
        aws_secret_access_key=settings.s3_secret_access_key or None,
        config=config,
    )


class _Seen:
    """Videos known to exist, for `EXISTS_TTL` seconds: a cache hit then costs no HEAD."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self._until: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, sha: str) -> None:
        with self._lock:
            self._until[sha] = self.clock() + EXISTS_TTL
            self._until.move_to_end(sha)
            while len(self._until) > EXISTS_MAX:
                self._until.popitem(last=False)

    def __contains__(self, sha: object) -> bool:
        with self._lock:
            until = self._until.get(str(sha))
            return until is not None and until > self.clock()

    def discard(self, sha: str) -> None:
        with self._lock:
            self._until.pop(sha, None)


class S3VideoStorage(VideoStorage):
    """A bucket of published videos; renders are staged in `directory` before upload."""

    remote = True

    def __init__(self, directory: Path, public_prefix: str = "/videos", *, client: S3Client,
                 bucket: str, key_prefix: str = "videos/", public_base_url: str = "",
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(directory, public_prefix)
        if not bucket:
            raise ValueError("an S3 bucket name is required")
        self.client = client
        self.bucket = bucket
        self.key_prefix = key_prefix
        self.public_base_url = public_base_url.rstrip("/")
        self._seen = _Seen(clock)

    @classmethod
    def from_settings(cls, settings: Settings) -> S3VideoStorage:
        return cls(settings.resolved_video_dir, settings.video_public_prefix,
                   client=make_client(settings), bucket=settings.s3_bucket,
                   key_prefix=settings.s3_prefix, public_base_url=settings.s3_public_base_url)

    def __repr__(self) -> str:  # never the client: it holds the credentials
        return f"S3VideoStorage({self.location!r}, staging={str(self.directory)!r})"

    @property
    def location(self) -> str:
        return f"s3://{self.bucket}/{self.key_prefix}"

    # --- names --------------------------------------------------------------------------------
    def object_key(self, sha: str, suffix: str = ".mp4") -> str:
        if not SHA_RE.fullmatch(sha):
            raise ValueError(f"not a sha256 hex digest: {sha!r}")
        return f"{self.key_prefix}{sha}{suffix}"

    def _public(self, sha: str, suffix: str) -> str | None:
        if not self.public_base_url:
            return None
        return f"{self.public_base_url}/{self.object_key(sha, suffix)}"

    def url_for(self, sha: str) -> str:
        return self._public(sha, ".mp4") or super().url_for(sha)

    def poster_url(self, sha: str) -> str:
        return self._public(sha, ".png") or super().poster_url(sha)

    def sha_of_url(self, url: str) -> str | None:
        """Our app URL (`/videos/<sha>.mp4`, also what entries held before S3) or our public
        URL; None for anything else."""
        sha = super().sha_of_url(url)
        if sha is not None or not self.public_base_url:
            return sha
        prefix = f"{self.public_base_url}/{self.key_prefix}"
        if not url.startswith(prefix) or not url.endswith(".mp4"):
            return None
        sha = url[len(prefix):-len(".mp4")]
        return sha if SHA_RE.fullmatch(sha) else None

    def resolve(self, name: str) -> Path | None:
        return None  # nothing is served from a local file: see `redirect_for`

    def redirect_for(self, name: str) -> str | None:
        """The public URL (or a presigned one) of "<sha>.mp4" when the object exists."""
        if not name.endswith(".mp4") or not SHA_RE.fullmatch(name[:-4]):
            return None
        sha = name[:-4]
        if not self.exists(sha):
            return None
        public = self._public(sha, ".mp4")
        if public is not None:
            return public
        with _mapped(f"cannot sign a URL for {sha[:12]}"):
            return self.client.generate_presigned_url(
                "get_object", Params={"Bucket": self.bucket, "Key": self.object_key(sha)},
                ExpiresIn=PRESIGN_SECONDS)

    # --- objects ------------------------------------------------------------------------------
    def _get(self, key: str) -> bytes | None:
        """The object's bytes, None when there is none."""
        with _mapped(f"cannot read {key}"):
            try:
                return self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
            except ClientError as exc:
                if _not_found(exc):
                    return None
                raise

    def _put(self, key: str, body: bytes, content_type: str, cache_control: str) -> None:
        with _mapped(f"cannot write {key}"):
            self.client.put_object(Bucket=self.bucket, Key=key, Body=body,
                                   ContentType=content_type, CacheControl=cache_control)

    def exists(self, sha: str) -> bool:
        """Whether the video is in the bucket. A HEAD that fails for another reason than "not
        found" answers True (logged): the cache entry asking was written after the upload,
        and a false "missing" would render the video again for nothing."""
        if sha in self._seen:
            return True
        try:
            self.client.head_object(Bucket=self.bucket, Key=self.object_key(sha))
        except ClientError as exc:
            if _not_found(exc):
                return False
            logger.warning("cannot check video %s in the bucket (%s); assuming it is there",
                           sha[:12], exc.response.get("Error", {}).get("Code", "?"))
            return True
        except BotoCoreError as exc:
            logger.warning("cannot check video %s in the bucket (%s); assuming it is there",
                           sha[:12], type(exc).__name__)
            return True
        self._seen.add(sha)
        return True

    def poster(self, sha: str) -> Path | None:
        """A local copy of the poster (downloaded once into `directory/posters`), or None."""
        if not SHA_RE.fullmatch(sha):
            return None
        path = self.directory / "posters" / f"{sha}.png"
        if path.is_file():
            return path
        try:
            png = self._get(self.object_key(sha, ".png"))
        except ObjectStoreError as exc:
            logger.warning("no poster for %s: %s", sha[:12], exc)
            return None
        if png is None:
            return None
        path.parent.mkdir(parents=True, exist_ok=True)
        self._write_atomic(path, png)
        return path

    # --- writing ------------------------------------------------------------------------------
    def publish(self, temp: Path, meta: VideoMeta) -> VideoMeta:
        """Check the staged MP4, cut its poster, upload video, poster and sidecar (in that
        order), and remove the staged file."""
        sha = sha_of_key(meta.key)
        try:
            if not temp.is_file() or temp.stat().st_size == 0:
                raise StorageError("the provider produced no file")
            meta = replace(meta, duration=round(probe_mp4(temp), 3))
            poster = self._poster_of(temp, sha)
            with open(temp, "rb") as fh, _mapped(f"cannot upload video {sha[:12]}"):
                self.client.put_object(Bucket=self.bucket, Key=self.object_key(sha), Body=fh,
                                       ContentType="video/mp4", CacheControl=IMMUTABLE)
            if poster is not None:
                self._put(self.object_key(sha, ".png"), poster, "image/png", IMMUTABLE)
            self._put(self.object_key(sha, ".json"), meta.to_json(), "application/json",
                      "no-cache")
        except ObjectStoreError:
            raise
        except OSError as exc:
            raise StorageError(f"cannot publish video {sha[:12]}: {exc}") from exc
        finally:
            self.discard(temp)
        self._seen.add(sha)
        return meta

    def _poster_of(self, mp4: Path, sha: str) -> bytes | None:
        try:
            return last_frame_png(mp4)
        except (StorageError, OSError) as exc:
            logger.warning("no poster for %s: %s", sha[:12], exc)
            return None

    def write_poster(self, sha: str) -> bool:
        """Make and upload the poster of a published video (one stored before posters)."""
        temp = self.temp_path(sha)
        try:
            with open(temp, "wb") as fh, _mapped(f"cannot download video {sha[:12]}"):
                self.client.download_fileobj(self.bucket, self.object_key(sha), fh)
            png = self._poster_of(temp, sha)
            if png is None:
                return False
            self._put(self.object_key(sha, ".png"), png, "image/png", IMMUTABLE)
        except OSError as exc:  # ObjectStoreError included
            logger.warning("no poster for %s: %s", sha[:12], exc)
            return False
        finally:
            self.discard(temp)
        return True

    def delete(self, sha: str) -> bool:
        """Remove the video, its poster and its sidecar; True if the video was there."""
        existed = self._head(sha)
        keys = [self.object_key(sha, suffix) for suffix in (".mp4", ".png", ".json")]
        with _mapped(f"cannot delete video {sha[:12]}"):
            self.client.delete_objects(Bucket=self.bucket, Delete={
                "Objects": [{"Key": key} for key in keys], "Quiet": True})
        self._seen.discard(sha)
        with contextlib.suppress(FileNotFoundError):
            (self.directory / "posters" / f"{sha}.png").unlink()
        return existed

    def _head(self, sha: str) -> bool:
        with _mapped(f"cannot check video {sha[:12]}"):
            try:
                self.client.head_object(Bucket=self.bucket, Key=self.object_key(sha))
            except ClientError as exc:
                if _not_found(exc):
                    return False
                raise
        return True

    # --- sidecars and extra objects -----------------------------------------------------------
    def read_extra(self, sha: str, suffix: str) -> bytes | None:
        self.extra_path(sha, suffix)  # validates the suffix
        return self._get(self.object_key(sha, suffix))

    def write_extra(self, sha: str, suffix: str, data: bytes) -> None:
        self.extra_path(sha, suffix)
        self._put(self.object_key(sha, suffix), data, "application/json", "no-cache")

    def read_meta(self, sha: str) -> VideoMeta | None:
        try:
            raw = self._get(self.object_key(sha, ".json"))
        except ObjectStoreError as exc:
            logger.warning("unreadable sidecar for %s: %s", sha[:12], exc)
            return None
        if raw is None:
            return None
        try:
            return VideoMeta.from_json(raw)
        except ValueError as exc:
            logger.warning("unreadable sidecar for %s: %s", sha[:12], exc)
            return None

    def mark_permanent(self, sha: str) -> bool:
        meta = self.read_meta(sha)
        if meta is None or meta.permanent:
            return False
        self._put(self.object_key(sha, ".json"), replace(meta, permanent=True).to_json(),
                  "application/json", "no-cache")
        return True

    def list_shas(self) -> list[str]:
        """The sha of every video in the bucket (under the prefix), sorted."""
        shas = []
        paginator = self.client.get_paginator("list_objects_v2")
        with _mapped(f"cannot list {self.location}"):
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self.key_prefix):
                for item in page.get("Contents", []):
                    name = item.get("Key", "")[len(self.key_prefix):]
                    if name.endswith(".mp4") and SHA_RE.fullmatch(name[:-4]):
                        shas.append(name[:-4])
        return sorted(shas)

    def count_videos(self) -> int:
        return len(self.list_shas())

    def iter_videos(self) -> Iterator[tuple[str, VideoMeta | None]]:
        """(sha, sidecar or None) for every video in the bucket; sidecars read in parallel."""
        shas = self.list_shas()
        for sha in shas:
            self._seen.add(sha)
        if not shas:
            return
        with ThreadPoolExecutor(min(LIST_WORKERS, len(shas)),
                                thread_name_prefix="s3-list") as pool:
            yield from zip(shas, pool.map(self.read_meta, shas), strict=True)
