"""Circuit breaker state. Pure: no I/O, the caller passes the clock when it matters.

CLOSED: Redis is used. OPEN: every call goes to memory, and one probe at a time looks for Redis,
spaced by capped exponential backoff with jitter (redis-py's `ExponentialWithJitterBackoff`).
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

from redis.backoff import ExponentialWithJitterBackoff


class CircuitBreaker:
    def __init__(self, probe_base: float, probe_cap: float) -> None:
        self._backoff = ExponentialWithJitterBackoff(cap=probe_cap, base=probe_base)
        self._lock = threading.Lock()
        self.is_open = False
        self.opened_at: float | None = None
        self.degraded_since: str | None = None
        self.failed_probes = 0
        self.next_probe_at = 0.0
        self._probing = False
        self.last_error: str | None = None

    def record_failure(self, reason: str) -> bool:
        """Open the breaker; True when this call opened it."""
        with self._lock:
            self.last_error = reason
            if self.is_open:
                return False
            self.is_open = True
            self.opened_at = time.monotonic()
            self.degraded_since = datetime.now(UTC).isoformat(timespec="seconds")
            self.failed_probes = 0
            self.next_probe_at = time.monotonic() + self._backoff.compute(0)
            return True

    def try_begin_probe(self) -> bool:
        """Claim the single probe slot if the breaker is open and a probe is due."""
        with self._lock:
            if not self.is_open or self._probing or time.monotonic() < self.next_probe_at:
                return False
            self._probing = True
            return True

    def probe_failed(self, reason: str) -> None:
        with self._lock:
            self._probing = False
            self.last_error = reason
            self.failed_probes += 1
            self.next_probe_at = time.monotonic() + self._backoff.compute(self.failed_probes)

    def release_probe(self, reason: str) -> None:
        """Give the probe slot back if the probe ended without a verdict (error, cancel)."""
        with self._lock:
            still_probing = self._probing
        if still_probing:
            self.probe_failed(reason)

    def probe_succeeded(self) -> float:
        """Close the breaker; returns how long it was open, in seconds."""
        with self._lock:
            self._probing = False
            opened = self.opened_at or time.monotonic()
            self.is_open = False
            self.opened_at = None
            self.degraded_since = None
            return time.monotonic() - opened

    def seconds_until_probe(self) -> float:
        return max(0.0, self.next_probe_at - time.monotonic())
