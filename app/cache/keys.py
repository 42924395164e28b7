"""The cache key of raw cards: `key_for(black, whites)`, validated and memoised.

The rules themselves (normalisation, limits, the netstring encoding, `KEY_PREFIX`) live in
`app.core.cards`; see docs/cache.md for the encoding and a test vector. A `Combination` carries
its key already (`combination.key`); this module serves the spec's sync API, which takes the two
card arguments, and memoises the keys of hot combinations.
"""

from __future__ import annotations

from functools import lru_cache

from app.core.cards import check_combination, key_of

__all__ = ["key_for"]


def _derive_key(black_card: object, white_cards: object) -> str:
    return key_of(*check_combination(black_card, white_cards))


@lru_cache(maxsize=4096)
def _cached_key(black_card: str, white_cards: tuple[str, ...]) -> str:
    return _derive_key(black_card, white_cards)


def key_for(black_card: object, white_cards: object) -> str:
    """Validate the cards and return their cache key (hot combinations are memoised)."""
    if type(black_card) is str and type(white_cards) in (list, tuple):
        try:
            return _cached_key(black_card, tuple(white_cards))  # type: ignore[arg-type]
        except TypeError as exc:  # an unhashable card: let validation explain
            if isinstance(exc, ValueError):  # a CardTypeError is both: it is the explanation
                raise
    return _derive_key(black_card, white_cards)
