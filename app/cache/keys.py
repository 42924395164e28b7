"""Cache keys: `video:` + SHA-256 hex of an unambiguous encoding of the card combination.

Each card is normalised (Unicode NFC, surrounding whitespace stripped), encoded as UTF-8 and
written as a netstring, `<byte length>:<bytes>,`. The black card comes first, then the white
cards in play order. Netstrings are self-delimiting, so no two combinations share an encoding
(`"a|b",["c"]` and `"a",["b|c"]` differ). See docs/cache.md for a test vector.
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Sequence
from functools import lru_cache

KEY_PREFIX = "video:"
MAX_WHITE_CARDS = 10
MAX_CARD_LENGTH = 1000


def normalize_card(text: str) -> str:
    text = text.strip()
    if not text.isascii():
        text = unicodedata.normalize("NFC", text)
    return text


def validate_cards(black_card: object, white_cards: object) -> tuple[str, list[str]]:
    """Return the normalised cards, or raise TypeError/ValueError saying what is wrong."""
    if not isinstance(black_card, str):
        raise TypeError(f"black_card must be a str, not {type(black_card).__name__}")
    if not isinstance(white_cards, Sequence) or isinstance(white_cards, str | bytes):
        raise TypeError(f"white_cards must be a list of str, not {type(white_cards).__name__}")
    black = normalize_card(black_card)
    if not black:
        raise ValueError("black_card must be a non-empty string")
    if len(black) > MAX_CARD_LENGTH:
        raise ValueError(f"black_card is longer than {MAX_CARD_LENGTH} characters")
    if not white_cards:
        raise ValueError("white_cards must contain at least one card")
    if len(white_cards) > MAX_WHITE_CARDS:
        raise ValueError(f"white_cards holds more than {MAX_WHITE_CARDS} cards")
    whites: list[str] = []
    for index, card in enumerate(white_cards):
        if not isinstance(card, str):
            raise TypeError(f"white_cards[{index}] must be a str, not {type(card).__name__}")
        card = normalize_card(card)
        if not card:
            raise ValueError(f"white_cards[{index}] must be a non-empty string")
        if len(card) > MAX_CARD_LENGTH:
            raise ValueError(f"white_cards[{index}] is longer than {MAX_CARD_LENGTH} characters")
        whites.append(card)
    return black, whites


def canonical_encoding(black_card: str, white_cards: Sequence[str]) -> bytes:
    """Netstring encoding of already-normalised cards."""
    parts = []
    for card in (black_card, *white_cards):
        raw = card.encode("utf-8")
        parts.append(b"%d:%s," % (len(raw), raw))
    return b"".join(parts)


def _derive_key(black_card: object, white_cards: object) -> str:
    black, whites = validate_cards(black_card, white_cards)
    return KEY_PREFIX + hashlib.sha256(canonical_encoding(black, whites)).hexdigest()


@lru_cache(maxsize=4096)
def _cached_key(black_card: str, white_cards: tuple[str, ...]) -> str:
    return _derive_key(black_card, white_cards)


def key_for(black_card: object, white_cards: object) -> str:
    """Validate the cards and return their cache key (hot combinations are memoised)."""
    if type(black_card) is str and type(white_cards) in (list, tuple):
        try:
            return _cached_key(black_card, tuple(white_cards))  # type: ignore[arg-type]
        except TypeError:  # an unhashable card: let validation explain
            pass
    return _derive_key(black_card, white_cards)
