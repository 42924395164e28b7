"""A card combination, and the most popular ones (for pre-generation).

    for combo in await popular_combinations():
        if not await video_cache.aget(combo.black, combo.whites):
            url = await generate_video(combo)
            await video_cache.aset(combo.black, combo.whites, url, permanent=False)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from app.core.cards import Combination

# One combination type: the validated, normalised and keyed value of the card rules. An invalid
# combination cannot be built (`CardError`, a ValueError), so a bad popularity member is dropped.
Combo = Combination


class ComboLike(Protocol):
    """Anything with the cards of a combination (a `Combination`, a game's `RoundWon`, ...)."""

    @property
    def black(self) -> str: ...

    @property
    def whites(self) -> Sequence[str]: ...


async def popular_combinations(top: int | None = None) -> list[Combo]:
    """The `top` most played combinations (default `pregen_top_n`), most played first."""
    from app.video.service import get_video_service

    service = get_video_service()
    n = service.settings.pregen_top_n if top is None else top
    return [combo for combo, _ in await service.popularity.top(n)]
