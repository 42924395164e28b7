"""The poster frame of a video: its final frame as a PNG (the whole filled-in card).

Made once when a video is published (`VideoStorage.publish`), whatever provider made the MP4,
and stored beside it as `{sha256}.png`: share pages use it as `og:image`.
"""

from __future__ import annotations

import io
from pathlib import Path

import av

from app.video.errors import StorageError


def last_frame_png(path: Path) -> bytes:
    """The last decodable video frame of the MP4 at `path`, encoded as PNG."""
    try:
        with av.open(str(path), mode="r") as container:
            if not container.streams.video:
                raise StorageError("the file has no video stream")
            stream = container.streams.video[0]
            last = None
            for frame in container.decode(stream):
                last = frame
            if last is None:
                raise StorageError("the video has no frame")
            image = last.to_image()  # type: ignore[no-untyped-call]
    except StorageError:
        raise
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise StorageError(f"cannot read a poster frame: {exc}") from exc
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()
