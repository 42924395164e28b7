"""Prometheus metrics at /metrics, read from the cache's counters at scrape time."""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from app.api.deps import CacheDep
from app.services.video_cache import VideoCache

router = APIRouter(tags=["metrics"])

GAUGES = {"hit_rate", "index_rebuild_in_progress", "index_rebuild_scanned"}


class VideoCacheCollector(Collector):
    def __init__(self, cache: VideoCache) -> None:
        self.cache = cache

    def collect(self) -> Iterator[Metric]:
        core = self.cache.core
        for name, value in core.counters.as_dict().items():
            metric_name = f"punchline_cache_{name}"
            if name in GAUGES:
                yield GaugeMetricFamily(metric_name, f"video cache {name}", value=value)
            else:
                yield CounterMetricFamily(metric_name, f"video cache {name}", value=value)
        yield GaugeMetricFamily("punchline_cache_redis_connected",
                                "1 while Redis serves the cache", value=int(core.redis_usable))
        yield GaugeMetricFamily("punchline_cache_memory_entries",
                                "entries in the in-process store", value=len(core.memory))
        yield GaugeMetricFamily("punchline_cache_near_active",
                                "1 while near-cache invalidation runs", value=int(core.near_live))


@router.get("/metrics", include_in_schema=False)
async def metrics(cache: CacheDep) -> Response:
    # A registry per scrape (every few seconds at most): the collector reads this app's cache.
    registry = CollectorRegistry()
    registry.register(VideoCacheCollector(cache))
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
