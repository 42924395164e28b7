"""Reading our own MP4 files with PyAV: one place that opens them and maps PyAV's errors.

    with open_video(path, "not a playable video") as (container, stream):
        ...
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import av

from app.video.errors import StorageError


@contextmanager
def open_video(path: Path, what_failed: str) -> Iterator[tuple[Any, Any]]:
    """The container and its first video stream; any read error is a `StorageError` that starts
    with `what_failed`."""
    try:
        with av.open(str(path), mode="r") as container:
            if not container.streams.video:
                raise StorageError("the file has no video stream")
            yield container, container.streams.video[0]
    except StorageError:
        raise
    except (av.FFmpegError, OSError, StopIteration, ValueError) as exc:
        raise StorageError(f"{what_failed}: {exc}") from exc
