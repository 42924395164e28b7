"""Where room records live: the interface, and the in-process store (the embedded default).

A store holds, per room, a version and the record's text, the room's history (finished rounds,
newest last, at most ``HISTORY_LIMIT``), and a schedule: when each room next needs the ticker
(a round deadline, a reconnect grace running out, an idle check). Saves are compare-and-set on
the version, so concurrent transitions of one room, from any instance, apply one at a time.

Stores speak text and versions; ``app.state.book`` turns them into records.
"""

from __future__ import annotations

from collections import deque
from typing import Protocol

HISTORY_LIMIT = 200


class StoreUnavailable(Exception):
    """The store could not be reached (Redis down, frozen or refusing writes)."""


class RoomStore(Protocol):
    shared: bool  # True: other instances see the same rooms

    async def create(self, code: str, text: str, ttl: float) -> bool:
        """Store a new room at version 1; False if the code is taken."""

    async def load(self, code: str) -> tuple[int, str] | None:
        """(version, text) of the room, or None."""

    async def save(self, code: str, expected: int, text: str, outcomes: list[str],
                   ttl: float) -> bool:
        """Replace the room if its version is still ``expected`` (it becomes expected + 1) and
        append ``outcomes`` to its history; False if someone saved in between."""

    async def force(self, code: str, version: int, text: str, outcomes: list[str],
                    ttl: float) -> None:
        """Write the room whatever is stored (the write-back after an outage)."""

    async def delete(self, code: str, expected: int) -> bool:
        """Remove the room and its history if its version is still ``expected``."""

    async def version(self, code: str) -> int | None: ...

    async def history(self, code: str) -> list[str]: ...

    async def schedule(self, code: str, at: float) -> None:
        """The ticker should look at the room at ``at`` (wall clock)."""

    async def claim_due(self, now: float, lease: float, limit: int) -> list[str]:
        """Rooms due by ``now``; each is pushed back by ``lease`` seconds so that only one
        caller takes it, and taken again after the lease if its taker died."""

    async def unschedule(self, code: str) -> None: ...

    async def count(self) -> int: ...

    async def confirm(self) -> int:
        """Re-write saves no replica has confirmed yet; returns how many now are (0 without
        replicas)."""


class MemoryRoomStore:
    """Rooms in this process only (``REDIS_URL=memory://`` or no Redis at start-up)."""

    shared = False

    def __init__(self) -> None:
        self._rooms: dict[str, tuple[int, str]] = {}  # code -> (version, text)
        self._history: dict[str, deque[str]] = {}
        self._due: dict[str, float] = {}

    def __len__(self) -> int:
        return len(self._rooms)

    async def create(self, code: str, text: str, ttl: float) -> bool:
        if code in self._rooms:
            return False
        self._rooms[code] = (1, text)
        return True

    async def load(self, code: str) -> tuple[int, str] | None:
        return self._rooms.get(code)

    async def save(self, code: str, expected: int, text: str, outcomes: list[str],
                   ttl: float) -> bool:
        held = self._rooms.get(code)
        if held is None or held[0] != expected:
            return False
        self._rooms[code] = (expected + 1, text)
        self._remember(code, outcomes)
        return True

    async def force(self, code: str, version: int, text: str, outcomes: list[str],
                    ttl: float) -> None:
        self._rooms[code] = (version, text)
        self._remember(code, outcomes)

    def _remember(self, code: str, outcomes: list[str]) -> None:
        if outcomes:
            self._history.setdefault(code, deque(maxlen=HISTORY_LIMIT)).extend(outcomes)

    async def delete(self, code: str, expected: int) -> bool:
        held = self._rooms.get(code)
        if held is None or held[0] != expected:
            return False
        del self._rooms[code]
        self._history.pop(code, None)
        self._due.pop(code, None)
        return True

    async def version(self, code: str) -> int | None:
        held = self._rooms.get(code)
        return held[0] if held is not None else None

    async def history(self, code: str) -> list[str]:
        return list(self._history.get(code, ()))

    async def schedule(self, code: str, at: float) -> None:
        if code in self._rooms:
            self._due[code] = at

    async def claim_due(self, now: float, lease: float, limit: int) -> list[str]:
        due = [code for code, at in self._due.items() if at <= now][:limit]
        for code in due:
            self._due[code] = now + lease
        return due

    async def unschedule(self, code: str) -> None:
        self._due.pop(code, None)

    async def count(self) -> int:
        return len(self._rooms)

    async def confirm(self) -> int:
        return 0  # no replicas in this process
