"""Where the video layer takes a combination (`combination_of`), and the most popular ones.

    for combo in await popular_combinations():
        if not await video_cache.aget(combo.black, combo.whites):
            url = await generate_video(combo)
            await video_cache.aset(combo.black, combo.whites, url, permanent=False)
"""

from __future__ import annotations

from collections.abc import Sequence

from app.core.cards import CardError, Combination
from app.video.errors import InvalidCardsError


def combination_of(cards: Combination | str, white_cards: Sequence[str] | None = None
                   ) -> Combination:
    """The edge of the video layer: a `Combination` as is, or one built once from
    `(black, whites)`; cards that break the rules raise `InvalidCardsError` saying why."""
    if isinstance(cards, Combination):
        if white_cards is not None:
            raise TypeError("a Combination carries its white cards: pass it alone")
        return cards
    try:
        return Combination(cards, white_cards)
    except CardError as exc:
        raise InvalidCardsError(str(exc)) from None
    except ValueError as exc:  # e.g. a lone surrogate has no UTF-8 form to hash
        raise InvalidCardsError(f"cards cannot be keyed: {exc}") from None


async def popular_combinations(top: int | None = None) -> list[Combination]:
    """The `top` most played combinations (default `pregen_top_n`), most played first."""
    from app.video.service import get_video_service

    service = get_video_service()
    n = service.settings.pregen_top_n if top is None else top
    return [combo for combo, _ in await service.popularity.top(n)]
