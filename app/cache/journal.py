"""Outage journal: writes made while Redis is unreachable, kept on local disk.

Each line is one JSON record `{"key", "entry" | null, "expires_at", "at", "target"}`; a null
entry is a delete. The journal makes an acknowledged write survive an app restart during an
outage, and is replayed into Redis when it returns.

`target` names the Redis the write was meant for (a hash of host, port and db, see
`connection.redis_target`). A process replays and restores only its own target's records;
records for another Redis (REDIS_URL changed, or a DATA_DIR shared by instances of different
Redis servers) are set aside in `<journal>.aside.<target>.<id>` with a warning. They are never
replayed into the wrong Redis, and a process whose REDIS_URL names their target later replays
them. Records written before targets existed are set aside as `unknown`.

Several processes may share one data directory. Appends and claims take an exclusive `flock`,
so no append can land in a file after it was claimed. A replayer claims the live journal by
renaming it to a unique `.replaying.<id>` file, replays every claim file it finds (its own and
any left by a crashed or interrupted replayer; replay is idempotent), then deletes the files
it replayed. Nothing is ever deleted that another process may still append to.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from app.cache.entry import CacheEntry, CorruptEntryError

logger = logging.getLogger(__name__)

FsyncPolicy = Literal["always", "permanent", "never"]
UNKNOWN_TARGET = "unknown"


@dataclass(frozen=True, slots=True)
class JournalRecord:
    key: str
    entry: CacheEntry | None  # None = delete
    expires_at: float | None
    at: str  # ISO time of the write; orders deletes against entries
    target: str = UNKNOWN_TARGET  # the Redis the write was meant for

    def to_line(self) -> bytes:
        data = {"key": self.key, "entry": None if self.entry is None else self.entry.to_dict(),
                "expires_at": self.expires_at, "at": self.at, "target": self.target}
        return json.dumps(data, separators=(",", ":")).encode("utf-8") + b"\n"

    @classmethod
    def from_line(cls, line: bytes) -> JournalRecord:
        data = json.loads(line)
        raw_entry = data["entry"]
        entry = None if raw_entry is None else CacheEntry.from_dict(raw_entry)
        expires = data.get("expires_at")
        return cls(key=str(data["key"]), entry=entry,
                   expires_at=None if expires is None else float(expires), at=str(data["at"]),
                   target=str(data.get("target") or UNKNOWN_TARGET))


@dataclass(frozen=True, slots=True)
class Claim:
    """Journal files taken for one replay, and their latest live record per key."""

    files: list[Path]
    records: list[JournalRecord]
    lines: int


def latest_live(records: list[JournalRecord]) -> list[JournalRecord]:
    latest: dict[str, JournalRecord] = {}
    for record in records:
        latest[record.key] = record
    now = time.time()
    return [r for r in latest.values() if r.expires_at is None or r.expires_at > now]


class Journal:
    def __init__(self, path: Path, fsync: FsyncPolicy = "permanent",
                 target: str = UNKNOWN_TARGET) -> None:
        self.path = path
        self.fsync = fsync
        self.target = target
        self._lock = threading.Lock()

    @contextmanager
    def _exclusive(self) -> Iterator[None]:
        """In-process lock plus an flock that serialises processes sharing the directory."""
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path.with_name(self.path.name + ".lock"), "a") as handle:
                fcntl.flock(handle, fcntl.LOCK_EX)
                try:
                    yield
                finally:
                    fcntl.flock(handle, fcntl.LOCK_UN)

    def _claim_files(self) -> list[Path]:
        """Orphaned claims, plus writes set aside earlier for our own target."""
        directory, name = self.path.parent, self.path.name
        return [*sorted(directory.glob(name + ".replaying.*")),
                *sorted(directory.glob(f"{name}.aside.{self.target}.*"))]

    def aside_files(self) -> list[Path]:
        """Files holding writes meant for another Redis (never replayed here)."""
        own = f"{self.path.name}.aside.{self.target}."
        return [path for path in sorted(self.path.parent.glob(self.path.name + ".aside.*"))
                if not path.name.startswith(own)]

    def _set_aside(self, records: list[JournalRecord]) -> None:
        """Move records of other targets to their own files before their claim is deleted."""
        by_target: dict[str, list[JournalRecord]] = {}
        for record in records:
            by_target.setdefault(record.target, []).append(record)
        for target, group in by_target.items():
            safe = "".join(char for char in target if char.isalnum())[:32] or UNKNOWN_TARGET
            path = self.path.with_name(f"{self.path.name}.aside.{safe}.{uuid.uuid4().hex}")
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                os.write(fd, b"".join(record.to_line() for record in group))
                os.fsync(fd)
            finally:
                os.close(fd)
            logger.warning("Set aside %d journaled writes meant for another Redis (target %s, "
                           "this one is %s) in %s: they are never replayed here", len(group),
                           target, self.target, path)

    def append(self, record: JournalRecord) -> None:
        """Write one record; raises OSError when the disk refuses."""
        line = record.to_line()
        must_sync = self.fsync == "always" or (
            self.fsync == "permanent" and record.entry is not None and record.entry.permanent)
        with self._exclusive():
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line)
                if must_sync:
                    os.fsync(fd)
            finally:
                os.close(fd)

    def _read(self, path: Path) -> list[JournalRecord]:
        try:
            lines = path.read_bytes().splitlines()
        except FileNotFoundError:
            return []
        records = []
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                records.append(JournalRecord.from_line(line))
            except (ValueError, KeyError, TypeError, CorruptEntryError):
                logger.warning("Skipping unreadable line %d of %s", number, path)
        return records

    def all_files(self) -> list[Path]:
        return [*self._claim_files(), *([self.path] if self.path.exists() else [])]

    def has_pending(self) -> bool:
        return bool(self.all_files())

    def pending(self) -> list[JournalRecord]:
        """Latest live record per key over every journal file (for a restart)."""
        records: list[JournalRecord] = []
        for path in self.all_files():
            records += self._read(path)
        return latest_live([r for r in records if r.target == self.target])

    def claim(self) -> Claim:
        """Take the live journal and every orphaned claim for replaying."""
        with self._exclusive():
            if self.path.exists():
                os.replace(self.path, self.path.with_name(
                    f"{self.path.name}.replaying.{uuid.uuid4().hex}"))
            files = self._claim_files()
        records: list[JournalRecord] = []
        for path in files:
            records += self._read(path)
        foreign = [r for r in records if r.target != self.target]
        if foreign:
            self._set_aside(foreign)
        own = [r for r in records if r.target == self.target]
        return Claim(files, latest_live(own), len(records))

    def release(self, claim: Claim) -> None:
        """The claim is in Redis: delete its files."""
        for path in claim.files:
            path.unlink(missing_ok=True)
