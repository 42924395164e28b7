"""Card rules, in one place: normalisation, limits, blank grammar, picks, and `Combination`.

The deck loader (`app/game/decks.py`), the cache key (`app/cache/keys.py`) and the renderer
(`app/video/text.py`) all apply these rules, so a card the game can deal is a card the cache can
key and the renderer can draw. Pure functions, no I/O.

- **Normalisation** (`normalize`): Unicode NFC, surrounding whitespace stripped. This is what the
  cache key hashes, so it must never change (docs/cache.md pins it with a test vector).
  `clean_text` goes further for display (controls dropped, whitespace collapsed).
- **Limits**: a black card holds at most `MAX_BLACK_CHARS` characters, a white card
  `MAX_WHITE_CHARS`, counted after normalisation; a combination has 1 to `MAX_WHITE_CARDS`
  white cards. The renderer lays out the longest allowed pick-3 combination without cutting it
  (docs/videos.md shows the frame).
- **Blanks**: a blank is a maximal run of underscores wherever it stands (`_`, `___`, `_ed`,
  `and_`). A black card with no blank is a question (its answers follow it); otherwise it has
  exactly `pick` blanks.
- **Pick**: 1 to `MAX_PICK`.

Errors: `CardError` (a `ValueError`) with a short `reason` code; `CardTypeError` is also a
`TypeError`, for a value of the wrong type.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Sequence
from typing import Literal

MAX_BLACK_CHARS = 500
MAX_WHITE_CHARS = 250
MIN_PICK = 1
MAX_PICK = 3
MAX_WHITE_CARDS = MAX_PICK
# Inputs longer than this many times their limit are refused before any normalisation work.
HARD_CAP_FACTOR = 8

KEY_PREFIX = "video:"

BLANK_RE = re.compile(r"_+")

Kind = Literal["black", "white"]
LIMITS: dict[Kind, int] = {"black": MAX_BLACK_CHARS, "white": MAX_WHITE_CHARS}


class CardError(ValueError):
    """A card or combination that breaks a rule. `reason` is a short stable code."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class CardTypeError(CardError, TypeError):
    """A card or list of cards of the wrong type."""

    def __init__(self, message: str) -> None:
        super().__init__("not_text", message)


# --- normalisation ----------------------------------------------------------------------------


def normalize(text: str) -> str:
    """NFC, surrounding whitespace stripped: the form that cache keys hash."""
    text = text.strip()
    if not text.isascii():
        text = unicodedata.normalize("NFC", text)
    return text


_KEEP_FORMAT = {"\u200c", "\u200d"}  # ZWNJ, ZWJ: needed by scripts and emoji sequences
_WHITESPACE_CONTROLS = {"\t", "\n", "\r", "\x0b", "\x0c", "\x85", "\u2028", "\u2029"}
_DROPPED_CATEGORIES = {"Cc", "Cn", "Co"}
_TAG_RANGE = range(0xE0020, 0xE0080)  # tag characters of flag sequences (category Cf)


def clean_text(text: str) -> str:
    """The display form of a card text (what the renderer draws and narrates).

    Lone surrogates become U+FFFD, surrogate pairs are joined, control and unassigned characters
    are dropped, bidi overrides and invisible format characters are removed (ZWJ/ZWNJ and emoji
    tags stay), whitespace is collapsed, and the result is NFC.
    """
    if text.isascii() and text.isprintable():  # the common case, same result as below
        return " ".join(text.split())
    return _clean_general(text)


def _clean_general(text: str) -> str:
    joined = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    out: list[str] = []
    for ch in unicodedata.normalize("NFC", joined):
        if ch in _WHITESPACE_CONTROLS:
            out.append(" ")
        elif not _dropped(ch):
            out.append(ch)
    return " ".join("".join(out).split())


def _dropped(ch: str) -> bool:
    category = unicodedata.category(ch)
    return category in _DROPPED_CATEGORIES or (
        category == "Cf" and ch not in _KEEP_FORMAT and ord(ch) not in _TAG_RANGE)


def has_visible_text(text: str) -> bool:
    """Whether `clean_text(text)` is non-empty, without building it (usually the first char)."""
    for ch in text:
        if ch.isspace() or ch in _WHITESPACE_CONTROLS:
            continue
        if not _dropped(ch):
            return True
    return False


# --- blanks and picks -------------------------------------------------------------------------


def count_blanks(text: str) -> int:
    return len(BLANK_RE.findall(text))


def check_pick(pick: object) -> int:
    if not isinstance(pick, int) or isinstance(pick, bool) or not MIN_PICK <= pick <= MAX_PICK:
        raise CardError("bad_pick", f"pick must be an integer from {MIN_PICK} to {MAX_PICK}, "
                                    f"got {pick!r}")
    return pick


def check_blanks(text: str, pick: int) -> None:
    """A black card has no blank (a question) or exactly `pick` blanks."""
    blanks = count_blanks(text)
    if blanks not in (0, pick):
        raise CardError("blanks_differ_from_pick", f"has {blanks} blanks but pick {pick}")


# --- one card ---------------------------------------------------------------------------------


def check_text(text: object, kind: Kind, what: str | None = None) -> str:
    """The normalised text of one card, or CardError saying what is wrong with it.

    The length is counted after normalisation; the display form must not be empty either (a card
    of control characters only would render as nothing).
    """
    what = what or f"{kind} card"
    if not isinstance(text, str):
        raise CardTypeError(f"{what} must be a string, not {type(text).__name__}")
    limit = LIMITS[kind]
    if len(text) > limit * HARD_CAP_FACTOR:
        raise CardError("too_long", f"{what} is {len(text)} characters long; the limit is {limit}")
    normal = normalize(text)
    if not has_visible_text(normal):
        raise CardError("empty", f"{what} is empty")
    if len(normal) > limit:
        raise CardError("too_long",
                        f"{what} is {len(normal)} characters long; the limit is {limit}")
    return normal


def check_black(text: object, pick: object = 1) -> tuple[str, int]:
    """A playable black card: (normalised text, pick)."""
    normal = check_text(text, "black")
    checked = check_pick(pick)
    check_blanks(normal, checked)
    return normal, checked


# --- a combination ----------------------------------------------------------------------------


def check_combination(black: object, whites: object) -> tuple[str, tuple[str, ...]]:
    """The normalised (black, whites) of a combination, or CardError naming the bad argument."""
    black_text = check_text(black, "black", "black_card")
    if isinstance(whites, str | bytes) or not isinstance(whites, Sequence):
        raise CardTypeError(
            f"white_cards must be a list of strings, not {type(whites).__name__}")
    if not whites:
        raise CardError("no_white_cards", "white_cards must contain at least one card")
    if len(whites) > MAX_WHITE_CARDS:
        raise CardError("too_many_white_cards", f"white_cards holds {len(whites)} cards; "
                                                f"at most {MAX_WHITE_CARDS} are supported")
    return black_text, tuple(
        check_text(w, "white", f"white_cards[{i}]") for i, w in enumerate(whites))


def canonical_encoding(black: str, whites: Sequence[str]) -> bytes:
    """Netstrings (`<byte length>:<UTF-8 bytes>,`) of already-normalised cards, black first."""
    parts = []
    for card in (black, *whites):
        raw = card.encode("utf-8")  # UnicodeEncodeError (a ValueError) on a lone surrogate
        parts.append(b"%d:%s," % (len(raw), raw))
    return b"".join(parts)


def key_of(black: str, whites: Sequence[str]) -> str:
    """The cache key of already-normalised cards."""
    return KEY_PREFIX + hashlib.sha256(canonical_encoding(black, whites)).hexdigest()


class Combination:
    """A black card and its white cards in play order: validated, normalised and keyed once.

    Equal combinations have equal keys. It has `.black` and `.whites`, so it is accepted
    wherever a combo-like value is (`generate_video`, the cache's `get_many`).
    """

    __slots__ = ("black", "whites", "key")

    black: str
    whites: tuple[str, ...]
    key: str

    def __init__(self, black: object, whites: object) -> None:
        b, w = check_combination(black, whites)
        object.__setattr__(self, "black", b)
        object.__setattr__(self, "whites", w)
        object.__setattr__(self, "key", key_of(b, w))

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Combination is immutable")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Combination) and other.key == self.key

    def __hash__(self) -> int:
        return hash(self.key)

    def __repr__(self) -> str:
        return f"Combination({self.black!r}, {list(self.whites)!r})"

    def display(self) -> tuple[str, tuple[str, ...]]:
        """The texts as the renderer draws them (`clean_text`)."""
        return clean_text(self.black), tuple(clean_text(w) for w in self.whites)
