"""One log line per key per window: a client that repeats something we log (a refused
connection, say) costs one line a minute, with a count of the ones that were not logged.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

LOG_WINDOW = 60.0  # seconds: one line per key per window


@dataclass(slots=True)
class _Window:
    started: float
    count: int = 1


class LogWindows:
    """Occurrences per key, in windows of ``window`` s, kept for at most two windows once
    ``sweep`` runs regularly (so a stream of addresses cannot grow it without bound)."""

    def __init__(self, window: float = LOG_WINDOW,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.window = window
        self._clock = clock
        self._by_key: dict[str, _Window] = {}
        self._swept = clock()

    def hit(self, key: str) -> int | None:
        """Count one for ``key``. None: stay quiet. Otherwise log one line now, with the
        returned count of those kept quiet in ``key``'s window before (0 if none)."""
        now = self._clock()
        w = self._by_key.get(key)
        if w is not None and now - w.started < self.window:
            w.count += 1
            return None
        self._by_key[key] = _Window(now)
        return w.count - 1 if w is not None else 0

    def sweep(self) -> list[tuple[str, int]]:
        """Drop the windows that ended; each dropped key that kept some quiet, with how many,
        for one last line. Does the work at most once a window, so call it as often as you like."""
        now = self._clock()
        if now - self._swept < self.window:
            return []
        self._swept = now
        quiet: list[tuple[str, int]] = []
        for key in [k for k, w in self._by_key.items() if now - w.started >= self.window]:
            w = self._by_key.pop(key)
            if w.count > 1:
                quiet.append((key, w.count - 1))
        return quiet

    def __len__(self) -> int:
        return len(self._by_key)
