"""Cache keys: `video:` + SHA-256 hex of an unambiguous encoding of the card combination.

Each card is normalised (Unicode NFC, surrounding whitespace stripped), encoded as UTF-8 and
written as a netstring, `<byte length>:<bytes>,`. The black card comes first, then the white
cards in play order. Netstrings are self-delimiting, so no two combinations share an encoding
(`"a|b",["c"]` and `"a",["b|c"]` differ). See docs/cache.md for a test vector.

The rules themselves (normalisation, limits, the encoding) live in `app.core.cards`, shared with
the game and the renderer; this module is the cache's view of them. A `Combination` carries
its key already (`combination.key`).
"""

from __future__ import annotations

from functools import lru_cache

from app.core.cards import (
    KEY_PREFIX,
    MAX_WHITE_CARDS,
    canonical_encoding,
    check_combination,
    key_of,
)
from app.core.cards import normalize as normalize_card

__all__ = [
    "KEY_PREFIX",
    "MAX_WHITE_CARDS",
    "canonical_encoding",
    "key_for",
    "normalize_card",
    "validate_cards",
]


def validate_cards(black_card: object, white_cards: object) -> tuple[str, list[str]]:
    """Return the normalised cards, or raise TypeError/ValueError saying what is wrong."""
    black, whites = check_combination(black_card, white_cards)
    return black, list(whites)


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
