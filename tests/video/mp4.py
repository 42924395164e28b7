"""Decoding helpers: what a produced MP4 really contains."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av


@dataclass
class Decoded:
    codec: str
    pix_fmt: str
    width: int
    height: int
    duration: float
    frames: int
    audio_codec: str | None
    audio_seconds: float
    faststart: bool


def decode(path: Path) -> Decoded:
    """Decode every video frame (and audio frame); raise if any is broken."""
    data = path.read_bytes()
    faststart = 0 <= data.find(b"moov") < data.find(b"mdat")
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        codec, pix_fmt = video.codec_context.name, video.format.name
        width, height = video.width, video.height
        assert container.duration is not None
        duration = container.duration / av.time_base
        frames = sum(1 for _ in container.decode(video=0))
    audio_codec, audio_seconds = None, 0.0
    with av.open(str(path)) as container:
        if container.streams.audio:
            audio = container.streams.audio[0]
            audio_codec = audio.codec_context.name
            audio_seconds = sum(f.samples for f in container.decode(audio=0)) / audio.rate
    return Decoded(codec, pix_fmt, width, height, duration, frames, audio_codec, audio_seconds,
                   faststart)
