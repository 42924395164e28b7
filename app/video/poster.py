"""The poster frame of a video: its final frame as a PNG (the whole filled-in card).

Made once when a video is published (`VideoStorage.publish`), whatever provider made the MP4,
and stored beside it as `{sha256}.png`: share pages use it as `og:image`.
"""

from __future__ import annotations

import io
from pathlib import Path

from app.video.errors import StorageError
from app.video.mp4 import open_video


def last_frame_png(path: Path) -> bytes:
    """The last decodable video frame of the MP4 at `path`, encoded as PNG."""
    with open_video(path, "cannot read a poster frame") as (container, stream):
        last = None
        for frame in container.decode(stream):
            last = frame
        if last is None:
            raise StorageError("the video has no frame")
        image = last.to_image()
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()
