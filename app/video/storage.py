"""Content-addressed video files: `{video_dir}/{sha256}.mp4` plus a `{sha256}.json` sidecar.

The sha256 is the hex part of the cache key, so the file name, the public URL and the cache key
are one identity: every instance computes the same URL for the same combination. Files are
published atomically (temporary file in the same directory, fsync, `os.replace`), so a reader
sees either no file or the whole file. The sidecar holds what `reindex` needs to rebuild the
cache entry (the card texts, `permanent`, `created_at`). A `{sha256}.png` poster (the final
frame, `app/video/poster.py`) is written beside each published MP4 and served under the same
prefix (`/videos/{sha256}.png`).

`VideoStorage` is both the local-folder backend and the storage interface: the S3-compatible
backend (`app/video/storage_s3.py`) subclasses it, keeps staging renders in the local folder,
and overrides every method that touches a published object. `build_storage(settings)` picks
one from `VIDEO_STORAGE`.

A temporary render file is named after its owner (`.tmp-<sha>-<pid>.<start>@<host>-<rand>`),
so `remove_stale_temps` removes the file of a dead process on this host at once and never the
file of a live one; files of other hosts (a shared folder) only go when old.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import secrets
import socket
import stat
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import av

from app.core.cards import KEY_PREFIX
from app.video.errors import StorageError
from app.video.mp4 import open_video
from app.video.poster import last_frame_png

if TYPE_CHECKING:
    from app.core.config import Settings

logger = logging.getLogger(__name__)

SHA_RE = re.compile(r"[0-9a-f]{64}")
META_VERSION = 1
_TEMP_PREFIX = ".tmp-"
# .tmp-<16 hex>-<pid>.<process start time>@<host>-<12 hex>.mp4 (see `_owner_tag`)
_OWNED_TEMP_RE = re.compile(r"\.tmp-[0-9a-f]{16}-(\d+)\.(\d+)@([A-Za-z0-9._]+)-[0-9a-f]{12}\.mp4")
# Extra objects stored beside a video, such as the winners' ".winner.json" records.
_SUFFIX_RE = re.compile(r"\.[a-z]+(\.[a-z]+)*")


def sha_of_key(key: str) -> str:
    """The hex part of a cache key "video:<64 hex>"; ValueError for anything else."""
    sha = key.removeprefix(KEY_PREFIX)
    if not key.startswith(KEY_PREFIX) or not SHA_RE.fullmatch(sha):
        raise ValueError(f"not a video cache key: {key!r}")
    return sha


@dataclass(frozen=True, slots=True)
class VideoMeta:
    """The sidecar of one video."""

    key: str
    black_card: str
    white_cards: list[str]
    permanent: bool
    created_at: str  # ISO-8601, UTC
    provider: str = "local"
    resolution: str = "360p"
    duration: float = 0.0
    version: int = META_VERSION

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), ensure_ascii=False, indent=1).encode("utf-8")

    @classmethod
    def from_json(cls, raw: bytes) -> VideoMeta:
        data: Any = json.loads(raw)
        if not isinstance(data, dict):
            raise ValueError("sidecar is not a JSON object")
        whites = data.get("white_cards")
        if (
            not isinstance(data.get("key"), str)
            or not isinstance(data.get("black_card"), str)
            or not isinstance(whites, list)
            or not all(isinstance(w, str) for w in whites)
            or not isinstance(data.get("permanent"), bool)
            or not isinstance(data.get("created_at"), str)
        ):
            raise ValueError("sidecar lacks key, black_card, white_cards, permanent or created_at")
        known = {f: data[f] for f in cls.__dataclass_fields__ if f in data}
        return cls(**known)


def probe_mp4(path: Path) -> float:
    """Check that `path` is an MP4 with a decodable video stream; return its duration (s)."""
    with open_video(path, "not a playable video") as (container, stream):
        next(container.decode(stream))
        if container.duration is not None:
            return float(container.duration / av.time_base)
        if stream.duration is not None and stream.time_base is not None:
            return float(stream.duration * stream.time_base)
        return 0.0


def _process_start(pid: int) -> str | None:
    """The start time of a process (clock ticks after boot, /proc), None if it does not exist.

    With the pid it names one process for good: a pid reused after a restart (pid 1 of a
    restarted container) has another start time.
    """
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return None
    except OSError:
        return "0"
    return raw.rsplit(")", 1)[-1].split()[19]  # field 22; the name in (...) may hold spaces


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9.]", "_", socket.gethostname())[:63] or "host"


@cache
def _owner_tag(pid: int) -> str:
    """`<pid>.<start>@<host>` of this process (cached per pid: a fork gets its own)."""
    start = _process_start(pid) if Path("/proc/self/stat").exists() else None
    return f"{pid}.{start or 0}@{_host()}"


def _owner_is_dead(name: str) -> bool:
    """True when `name` is a render file of a process of this host that no longer runs."""
    match = _OWNED_TEMP_RE.fullmatch(name)
    if match is None or match[3] != _host():
        return False
    pid, start = int(match[1]), match[2]
    if start != "0" and Path("/proc/self/stat").exists():
        return _process_start(pid) not in {start, "0"}
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class VideoStorage:
    """The video directory. Synchronous file I/O: call it through `asyncio.to_thread`."""

    remote = False  # True when published objects live elsewhere (`redirect_for` answers)

    def __init__(self, directory: Path, public_prefix: str = "/videos") -> None:
        self.directory = directory
        self.public_prefix = public_prefix.rstrip("/")

    @property
    def location(self) -> str:
        """Where the published videos are, for humans (a folder, or s3://bucket/prefix)."""
        return str(self.directory)

    # --- names --------------------------------------------------------------------------------
    def path_for(self, sha: str) -> Path:
        if not SHA_RE.fullmatch(sha):
            raise ValueError(f"not a sha256 hex digest: {sha!r}")
        return self.directory / f"{sha}.mp4"

    def meta_path(self, sha: str) -> Path:
        return self.path_for(sha).with_suffix(".json")

    def url_for(self, sha: str) -> str:
        return f"{self.public_prefix}/{sha}.mp4"

    def poster_path(self, sha: str) -> Path:
        return self.path_for(sha).with_suffix(".png")

    def poster_url(self, sha: str) -> str:
        return f"{self.public_prefix}/{sha}.png"

    def poster(self, sha: str) -> Path | None:
        """The poster file of a video, or None when it has none (or `sha` is not a digest)."""
        if not SHA_RE.fullmatch(sha):
            return None
        path = self.poster_path(sha)
        return path if self._is_ours(path) else None

    def sha_of_url(self, url: str) -> str | None:
        """The sha256 of one of our URLs, None for anything else (e.g. a provider's URL)."""
        prefix = self.public_prefix + "/"
        if not url.startswith(prefix) or not url.endswith(".mp4"):
            return None
        sha = url[len(prefix) : -len(".mp4")]
        return sha if SHA_RE.fullmatch(sha) else None

    def resolve(self, name: str) -> Path | None:
        """The file for a public name "<64 hex>.mp4", or None if the name is invalid or absent.

        Only a regular file that lies in the folder itself is served: a symlink (which could
        point at /etc/passwd) is refused, wherever it points. We never create one: files are
        published by rename. The folder itself may be a symlink.
        """
        if not name.endswith(".mp4") or not SHA_RE.fullmatch(name[:-4]):
            return None
        path = self.directory / name
        return path if self._is_ours(path) else None

    def _is_ours(self, path: Path) -> bool:
        try:
            if not stat.S_ISREG(path.lstat().st_mode):  # lstat: a symlink is not followed
                return False
            return path.resolve(strict=True).parent == self.directory.resolve(strict=True)
        except (OSError, RuntimeError):  # RuntimeError: a symlink loop in the folder's path
            return False

    def exists(self, sha: str) -> bool:
        return self._is_ours(self.path_for(sha))

    def redirect_for(self, name: str) -> str | None:
        """Where the file route sends a client for "<sha>.mp4" instead of serving a file; the
        local folder serves its files itself."""
        return None

    def extra_path(self, sha: str, suffix: str) -> Path:
        if not _SUFFIX_RE.fullmatch(suffix) or suffix in {".mp4", ".png", ".json"}:
            raise ValueError(f"not an extra object suffix: {suffix!r}")
        return self.path_for(sha).with_name(sha + suffix)

    # --- writing ------------------------------------------------------------------------------
    def temp_path(self, sha: str) -> Path:
        """A fresh temporary path in the video directory (same filesystem: atomic rename),
        named after this process so that it is swept as soon as the process is gone."""
        if not SHA_RE.fullmatch(sha):
            raise ValueError(f"not a sha256 hex digest: {sha!r}")
        self.directory.mkdir(parents=True, exist_ok=True)
        owner = _owner_tag(os.getpid())
        return self.directory / f"{_TEMP_PREFIX}{sha[:16]}-{owner}-{secrets.token_hex(6)}.mp4"

    def discard(self, temp: Path) -> None:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()

    def _write_atomic(self, path: Path, data: bytes) -> None:
        temp = path.with_name(f"{_TEMP_PREFIX}{secrets.token_hex(6)}-{path.name}")
        try:
            with open(temp, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(temp, path)
        finally:
            self.discard(temp)

    def publish(self, temp: Path, meta: VideoMeta) -> VideoMeta:
        """Check the MP4 at `temp`, move it to its content-addressed name, write the sidecar."""
        sha = sha_of_key(meta.key)
        try:
            if not temp.is_file() or temp.stat().st_size == 0:
                raise StorageError("the provider produced no file")
            meta = replace(meta, duration=round(probe_mp4(temp), 3))
            with open(temp, "rb+") as fh:
                os.fsync(fh.fileno())
            os.replace(temp, self.path_for(sha))
            self.write_poster(sha)
            self._write_atomic(self.meta_path(sha), meta.to_json())
            _fsync_dir(self.directory)
        except OSError as exc:
            raise StorageError(f"cannot publish video {sha[:12]}: {exc}") from exc
        finally:
            self.discard(temp)
        return meta

    def write_poster(self, sha: str) -> bool:
        """Write the poster of a published video; False (logged) if it cannot be made.

        A missing poster only costs share pages their image, so it never fails a publish.
        """
        try:
            png = last_frame_png(self.path_for(sha))
            self._write_atomic(self.poster_path(sha), png)
        except (StorageError, OSError) as exc:
            logger.warning("no poster for %s: %s", sha[:12], exc)
            return False
        return True

    def delete(self, sha: str) -> bool:
        """Remove a video, its poster and its sidecar (the sweeper's temporary videos); True if
        the video was there. Extra objects (a winner record) stay."""
        removed = False
        for path in (self.path_for(sha), self.poster_path(sha), self.meta_path(sha)):
            try:
                path.unlink()
                removed = removed or path.suffix == ".mp4"
            except FileNotFoundError:
                pass
        return removed

    # --- sidecars and extra objects -----------------------------------------------------------
    def read_extra(self, sha: str, suffix: str) -> bytes | None:
        """An extra object beside a video (`{sha}{suffix}`), None when there is none."""
        try:
            return self.extra_path(sha, suffix).read_bytes()
        except FileNotFoundError:
            return None

    def write_extra(self, sha: str, suffix: str, data: bytes) -> None:
        path = self.extra_path(sha, suffix)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._write_atomic(path, data)

    def read_meta(self, sha: str) -> VideoMeta | None:
        try:
            return VideoMeta.from_json(self.meta_path(sha).read_bytes())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            logger.warning("unreadable sidecar for %s: %s", sha[:12], exc)
            return None

    def mark_permanent(self, sha: str) -> bool:
        """Record a promotion in the sidecar (so that `reindex` restores it as permanent)."""
        meta = self.read_meta(sha)
        if meta is None or meta.permanent:
            return False
        self._write_atomic(self.meta_path(sha), replace(meta, permanent=True).to_json())
        return True

    def iter_videos(self) -> Iterator[tuple[str, VideoMeta | None]]:
        """(sha, sidecar or None) for every published video."""
        if not self.directory.is_dir():
            return
        for path in sorted(self.directory.glob("*.mp4")):
            sha = path.stem
            if not SHA_RE.fullmatch(sha):
                continue
            if not self._is_ours(path):
                logger.warning("ignoring %s: not a regular file (a symlink?)", path.name)
                continue
            yield sha, self.read_meta(sha)

    def count_videos(self) -> int:
        """How many videos are stored (a progress bar's total)."""
        if not self.directory.is_dir():
            return 0
        return sum(1 for p in self.directory.glob("*.mp4") if SHA_RE.fullmatch(p.stem))

    def remove_stale_temps(self, older_than: float = 3600.0) -> int:
        """Delete temporary files left by crashed renders: at once when their owner was a
        process of this host that is gone, otherwise when older than `older_than` seconds
        (another host's render in a shared folder, or a file of an older naming)."""
        if not self.directory.is_dir():
            return 0
        removed = 0
        limit = time.time() - older_than
        for path in self.directory.glob(f"{_TEMP_PREFIX}*"):
            with contextlib.suppress(OSError):
                if _owner_is_dead(path.name) or path.stat().st_mtime < limit:
                    path.unlink()
                    removed += 1
        return removed


def build_storage(settings: Settings) -> VideoStorage:
    """The storage named by `VIDEO_STORAGE`: the local folder, or an S3-compatible bucket
    (which stages renders in the same folder before upload)."""
    if settings.video_storage == "s3":
        from app.video.storage_s3 import S3VideoStorage  # boto3 is imported only when used

        return S3VideoStorage.from_settings(settings)
    return VideoStorage(settings.resolved_video_dir, settings.video_public_prefix)
