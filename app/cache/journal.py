"""Outage journal: writes made while Redis is unreachable, kept on local disk.

Each line is one JSON record `{"key", "entry" | null, "expires_at", "at"}`; a null entry is a
delete. The journal makes an acknowledged write survive an app restart during an outage, and is
replayed into Redis when it returns.

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


@dataclass(frozen=True, slots=True)
class JournalRecord:
    key: str
    entry: CacheEntry | None  # None = delete
    expires_at: float | None
    at: str  # ISO time of the write; orders deletes against entries

    def to_line(self) -> bytes:
        data = {"key": self.key, "entry": None if self.entry is None else self.entry.to_dict(),
                "expires_at": self.expires_at, "at": self.at}
        return json.dumps(data, separators=(",", ":")).encode("utf-8") + b"\n"

    @classmethod
    def from_line(cls, line: bytes) -> JournalRecord:
        data = json.loads(line)
        raw_entry = data["entry"]
        entry = None if raw_entry is None else CacheEntry.from_dict(raw_entry)
        expires = data.get("expires_at")
        return cls(key=str(data["key"]), entry=entry,
                   expires_at=None if expires is None else float(expires), at=str(data["at"]))


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
    def __init__(self, path: Path, fsync: FsyncPolicy = "permanent") -> None:
        self.path = path
        self.fsync = fsync
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
        return sorted(self.path.parent.glob(self.path.name + ".replaying.*"))

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
        return latest_live(records)

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
        return Claim(files, latest_live(records), len(records))

    def release(self, claim: Claim) -> None:
        """The claim is in Redis: delete its files."""
        for path in claim.files:
            path.unlink(missing_ok=True)
