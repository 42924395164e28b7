"""The start-up heap, kept out of the garbage collector's full collections.

What an instance builds before it serves (modules, routes, schemas, the deck library: some 130k
objects the collector tracks) lives as long as the process. A full (generation 2) collection
walks every tracked object, and on a busy 2-core box each took 50-90 ms of CPU, 100-190 ms of
wall time, with the event loop stopped: the paced-play ack p99 of two instances on Redis
(docs/benchmarks.md, bench_game "redis ×2"). ``gc.freeze()`` moves them to the permanent
generation, which no collection walks; a full collection then walks only what was made since
(about 30k objects, 10 ms).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

_serving = 0  # apps in this process inside the block (tests run several)


@contextmanager
def frozen_startup_heap() -> Iterator[None]:
    """Freeze what exists now for the duration of the block (the app's serving life).

    No collection first: a full one right after start-up finds next to no garbage, and would
    add 40-60 ms to every app start (tests start hundreds). The freeze is process-wide, so it is
    counted: the last app to stop thaws the heap, not the first."""
    global _serving
    _serving += 1
    gc.freeze()
    try:
        yield
    finally:
        _serving -= 1
        if _serving == 0:  # collectable again: tests run many apps one after the other
            gc.unfreeze()
