"""Counters of the video cache."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass
class CacheCounters:
    hits: int = 0
    misses: int = 0
    near_hits: int = 0
    sets: int = 0
    deletes: int = 0
    errors: int = 0
    fallbacks: int = 0
    corrupt: int = 0
    outages: int = 0
    reconnects: int = 0
    replayed: int = 0
    replay_kept_newer: int = 0
    index_rebuilds: int = 0  # rebuilds of the index after Redis lost its data (healer.py)
    index_restored: int = 0  # entries those rebuilds wrote back
    # The rebuild this instance runs now: 1 while it runs, and the videos it has scanned
    # (kept after it ends, until the next one starts). Gauges in /metrics.
    index_rebuild_in_progress: int = 0
    index_rebuild_scanned: int = 0

    @property
    def hit_rate(self) -> float:
        lookups = self.hits + self.misses
        return round(self.hits / lookups, 4) if lookups else 0.0

    def as_dict(self) -> dict[str, int | float]:
        return {**asdict(self), "hit_rate": self.hit_rate}
