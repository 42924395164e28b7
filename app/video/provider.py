"""What a video provider is: `VideoRequest` in, an MP4 at a path of our storage out."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

from app.core.cards import KEY_PREFIX
from app.video.text import compose, sentence

Resolution = Literal["360p", "720p"]


@dataclass(frozen=True, slots=True)
class VideoRequest:
    """One combination to turn into a video.

    `black_card` and `white_cards` are the cleaned texts (see `app.video.text`); `key` is the
    cache key of the original texts, `KEY_PREFIX` + "<sha256 hex>".
    """

    black_card: str
    white_cards: tuple[str, ...]
    key: str
    resolution: Resolution = "360p"

    @property
    def sha256(self) -> str:
        return self.key.removeprefix(KEY_PREFIX)

    @property
    def text(self) -> str:
        """The combination as one sentence: blanks filled, extra answers appended."""
        return sentence(compose(self.black_card, self.white_cards))


@runtime_checkable
class VideoProvider(Protocol):
    """Produces the MP4 of a request.

    `generate` writes a complete MP4 file at `dest` (a temporary path inside the video
    directory, so that publishing it is an atomic rename) or raises a `VideoGenerationError`.
    It never leaves a provider's URL behind: whatever the provider hosts is downloaded.
    """

    name: str

    async def generate(self, request: VideoRequest, dest: Path) -> None: ...

    async def aclose(self) -> None: ...
