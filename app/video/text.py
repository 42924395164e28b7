"""Card text: cleaning, limits, blanks and the composed sentence. Pure functions, no I/O."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

from app.video.errors import InvalidCardsError

MAX_BLACK_CHARS = 300
MAX_WHITE_CHARS = 150
MAX_WHITE_CARDS = 5
# Inputs longer than this many times the limit are refused before any cleaning work.
_HARD_CAP_FACTOR = 8

BLANK_RE = re.compile(r"_{1,}")
_KEEP_FORMAT = {"\u200c", "\u200d"}  # ZWNJ, ZWJ: needed by scripts and emoji sequences
_WHITESPACE_CONTROLS = {"\t", "\n", "\r", "\x0b", "\x0c", "\x85", "\u2028", "\u2029"}
_DROPPED_CATEGORIES = {"Cc", "Cn", "Co"}
_TAG_RANGE = range(0xE0020, 0xE0080)  # tag characters of flag sequences (category Cf)


def clean_text(text: str) -> str:
    """Normalise a card text into something every later stage can handle.

    Lone surrogates become U+FFFD, surrogate pairs are joined, control and unassigned characters
    are dropped, bidi overrides and invisible format characters are removed (ZWJ/ZWNJ and emoji
    tags stay), whitespace is collapsed, and the result is NFC.
    """
    joined = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    out: list[str] = []
    for ch in unicodedata.normalize("NFC", joined):
        if ch in _WHITESPACE_CONTROLS:
            out.append(" ")
            continue
        category = unicodedata.category(ch)
        if category in _DROPPED_CATEGORIES:
            continue
        if category == "Cf" and ch not in _KEEP_FORMAT and ord(ch) not in _TAG_RANGE:
            continue
        out.append(ch)
    return " ".join("".join(out).split())


def _checked(text: object, *, limit: int, what: str) -> str:
    if not isinstance(text, str):
        raise InvalidCardsError(f"{what} must be a string, not {type(text).__name__}")
    if len(text) > limit * _HARD_CAP_FACTOR:
        raise InvalidCardsError(f"{what} is {len(text)} characters long; the limit is {limit}")
    cleaned = clean_text(text)
    if not cleaned:
        raise InvalidCardsError(f"{what} is empty")
    if len(cleaned) > limit:
        raise InvalidCardsError(f"{what} is {len(cleaned)} characters long; the limit is {limit}")
    return cleaned


def validate_cards(black_card: object, white_cards: object) -> tuple[str, tuple[str, ...]]:
    """Return the cleaned (black, whites), or raise `InvalidCardsError` with a clear message."""
    black = _checked(black_card, limit=MAX_BLACK_CHARS, what="black card")
    if isinstance(white_cards, str) or not isinstance(white_cards, Sequence):
        raise InvalidCardsError("white_cards must be a list of strings")
    if not white_cards:
        raise InvalidCardsError("at least one white card is required")
    if len(white_cards) > MAX_WHITE_CARDS:
        raise InvalidCardsError(
            f"{len(white_cards)} white cards given; at most {MAX_WHITE_CARDS} are supported"
        )
    whites = tuple(
        _checked(w, limit=MAX_WHITE_CHARS, what=f"white card {i + 1}")
        for i, w in enumerate(white_cards)
    )
    return black, whites


class Role(Enum):
    PROMPT = "prompt"
    ANSWER = "answer"


@dataclass(frozen=True, slots=True)
class Segment:
    """A run of the composed text. `answer` is the answer's index for Role.ANSWER, else -1.

    `in_blank` marks an answer written into a blank of the prompt (drawn over an underline);
    `paragraph` starts a new paragraph before this segment.
    """

    text: str
    role: Role
    answer: int = -1
    in_blank: bool = False
    paragraph: bool = False


def _fit_answer(answer: str, following: str) -> str:
    """Drop a white card's final period when the prompt goes on with punctuation."""
    if answer.endswith(".") and not answer.endswith("..") and following[:1] in {
        ".", "?", "!", ",", ";", ":"
    }:
        return answer[:-1]
    return answer


def compose(black: str, whites: Sequence[str]) -> list[Segment]:
    """Fill the blanks of the black card with the answers, in order.

    Extra answers (or all of them, when the prompt has no blank) become paragraphs below the
    prompt; blanks without an answer stay as drawn blanks.
    """
    parts = BLANK_RE.split(black)
    blanks = len(parts) - 1
    segments: list[Segment] = []
    for i, part in enumerate(parts):
        if part:
            segments.append(Segment(part, Role.PROMPT))
        if i < blanks:
            if i < len(whites):
                text = _fit_answer(whites[i], parts[i + 1])
                segments.append(Segment(text, Role.ANSWER, answer=i, in_blank=True))
            else:
                segments.append(Segment("_____", Role.PROMPT))
    for j in range(blanks, len(whites)):
        segments.append(Segment(whites[j], Role.ANSWER, answer=j, paragraph=True))
    return segments


def sentence(segments: Sequence[Segment]) -> str:
    """The composed text as one plain string (for narration and hosted-provider prompts)."""
    out = ""
    for seg in segments:
        if seg.paragraph and out:
            out = out.rstrip() + ". " if out.rstrip()[-1:].isalnum() else out.rstrip() + " "
        out += seg.text
    return " ".join(out.split())
