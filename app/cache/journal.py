"""Outage journal: writes made while Redis is unreachable, kept on local disk.

Each line is one JSON record `{"key", "entry" | null, "expires_at", "at"}`; a null entry is a
delete. The journal makes an acknowledged write survive an app restart during an outage, and is
replayed into Redis when it returns. Replaying renames the file first, so writes of a later
outage go to a fresh journal; a replay cut short is resumed from the renamed file.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import threading
import time
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


class Journal:
    def __init__(self, path: Path, fsync: FsyncPolicy = "permanent") -> None:
        self.path = path
        self.replaying_path = path.with_name(path.name + ".replaying")
        self.fsync = fsync
        self._lock = threading.Lock()
        self.appended = 0

    @contextmanager
    def _file_lock(self) -> Iterator[None]:
        """Serialise processes that share the data directory."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_name(self.path.name + ".lock"), "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def append(self, record: JournalRecord) -> None:
        line = record.to_line()
        must_sync = self.fsync == "always" or (
            self.fsync == "permanent" and record.entry is not None and record.entry.permanent)
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line)
                if must_sync:
                    os.fsync(fd)
            finally:
                os.close(fd)
            self.appended += 1

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

    def pending(self) -> list[JournalRecord]:
        """Latest record per key from both files, expired entries dropped."""
        latest: dict[str, JournalRecord] = {}
        for record in self._read(self.replaying_path) + self._read(self.path):
            latest[record.key] = record
        now = time.time()
        return [r for r in latest.values() if r.expires_at is None or r.expires_at > now]

    def pending_count(self) -> int:
        return len(self.pending()) if self.has_pending() else 0

    def has_pending(self) -> bool:
        return self.path.exists() or self.replaying_path.exists()

    def begin_replay(self) -> list[JournalRecord]:
        """Move the live journal aside and return everything that needs replaying."""
        with self._lock, self._file_lock():
            if self.path.exists():
                if self.replaying_path.exists():
                    merged = self.replaying_path.read_bytes() + self.path.read_bytes()
                    tmp = self.replaying_path.with_suffix(".tmp")
                    tmp.write_bytes(merged)
                    os.replace(tmp, self.replaying_path)
                    self.path.unlink()
                else:
                    os.replace(self.path, self.replaying_path)
        latest: dict[str, JournalRecord] = {}
        for record in self._read(self.replaying_path):
            latest[record.key] = record
        now = time.time()
        return [r for r in latest.values() if r.expires_at is None or r.expires_at > now]

    def finish_replay(self) -> None:
        with self._lock:
            self.replaying_path.unlink(missing_ok=True)
