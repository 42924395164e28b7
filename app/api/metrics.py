"""Prometheus metrics at /metrics, read from the cache's counters at scrape time."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from app.api.deps import CacheDep
from app.services.video_cache import VideoCache
from app.video.service import VideoService, get_video_service

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


class RenderQueueCollector(Collector):
    """The render queue (app/video/queue.py), per priority: read from Redis at scrape time,
    so every instance reports the whole queue (counters are the queue's, not this process's)."""

    GAUGES = {"queue_depth": "jobs waiting or queued", "oldest_job_age_seconds":
              "age of the oldest waiting job", "dead_letters": "dead-lettered jobs"}
    COUNTERS = {"renders": "jobs finished with a video (renders per second: rate())",
                "retries": "job retries", "failures": "render failures",
                "dropped": "speculative jobs dropped under pressure"}

    def __init__(self, stats: dict[str, Any]) -> None:
        self.stats = stats

    def collect(self) -> Iterator[Metric]:
        priorities: dict[str, dict[str, Any]] = self.stats.get("priorities", {})
        values = {
            "queue_depth": lambda p: p["waiting"] + p["admitted"],
            "oldest_job_age_seconds": lambda p: p["oldest_age_seconds"],
            "dead_letters": lambda p: p["dead_letters"],
        }
        for name, doc in self.GAUGES.items():
            gauge = GaugeMetricFamily(f"punchline_video_{name}", doc, labels=["priority"])
            for label, p in priorities.items():
                gauge.add_metric([label], values[name](p))
            yield gauge
        for name, doc in self.COUNTERS.items():
            counter = CounterMetricFamily(f"punchline_video_{name}", doc, labels=["priority"])
            for label, p in priorities.items():
                counter.add_metric([label], p.get(name, 0))
            yield counter
        yield GaugeMetricFamily("punchline_video_workers", "render workers seen (heartbeat)",
                                value=self.stats.get("workers", 0))


@router.get("/metrics", include_in_schema=False)
async def metrics(cache: CacheDep,
                  service: Annotated[VideoService, Depends(get_video_service)]) -> Response:
    # A registry per scrape (every few seconds at most): the collector reads this app's cache.
    registry = CollectorRegistry()
    registry.register(VideoCacheCollector(cache))
    if service.dispatcher is not None:
        registry.register(RenderQueueCollector(await service.dispatcher.stats()))
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
