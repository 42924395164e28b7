"""Card text cleaning, limits and composition."""

from __future__ import annotations

import pytest

from app.video.errors import InvalidCardsError, VideoGenerationError
from app.video.text import (
    MAX_BLACK_CHARS,
    MAX_WHITE_CARDS,
    MAX_WHITE_CHARS,
    Role,
    clean_text,
    compose,
    sentence,
    validate_cards,
)


def test_clean_text_drops_controls_and_fixes_surrogates() -> None:
    assert clean_text("a\x00b\x07c\td\ne") == "abc d e"
    assert clean_text("lone \ud800 surrogate") == "lone \ufffd surrogate"
    assert clean_text("pair \ud83c\udf55") == "pair \U0001f355"
    assert clean_text("\u202eevil\u202c  text\ufeff") == "evil text"
    assert clean_text("e\u0301") == "\u00e9"  # NFC
    assert clean_text("👨\u200d👩\u200d👧") == "👨\u200d👩\u200d👧"  # ZWJ kept


def test_validate_cards_gives_clear_errors() -> None:
    with pytest.raises(InvalidCardsError, match="black card is 301 characters"):
        validate_cards("x" * (MAX_BLACK_CHARS + 1), ["a"])
    with pytest.raises(InvalidCardsError, match="white card 2 is"):
        validate_cards("Why?", ["ok", "y" * (MAX_WHITE_CHARS + 1)])
    with pytest.raises(InvalidCardsError, match="at most 5"):
        validate_cards("Why?", ["a"] * (MAX_WHITE_CARDS + 1))
    with pytest.raises(InvalidCardsError, match="at least one"):
        validate_cards("Why?", [])
    with pytest.raises(InvalidCardsError, match="empty"):
        validate_cards("\x00\x01", ["a"])
    with pytest.raises(InvalidCardsError, match="list of strings"):
        validate_cards("Why?", "a")
    with pytest.raises(InvalidCardsError, match="must be a string"):
        validate_cards("Why?", [3])
    # a megabyte of text is refused before any work
    with pytest.raises(InvalidCardsError):
        validate_cards("x" * 1_000_000, ["a"])
    # the error is what the game catches
    assert issubclass(InvalidCardsError, VideoGenerationError)


def test_compose_fills_blanks_in_order() -> None:
    segments = compose("_ + _ = _.", ["A", "B"])
    assert [(s.text, s.role, s.answer, s.in_blank) for s in segments] == [
        ("A", Role.ANSWER, 0, True),
        (" + ", Role.PROMPT, -1, False),
        ("B", Role.ANSWER, 1, True),
        (" = ", Role.PROMPT, -1, False),
        ("_____", Role.PROMPT, -1, False),
        (".", Role.PROMPT, -1, False),
    ]


def test_compose_without_blank_puts_answers_below() -> None:
    segments = compose("What ends my day?", ["Naps.", "Tacos."])
    assert [s.paragraph for s in segments] == [False, True, True]
    assert sentence(segments) == "What ends my day? Naps. Tacos."


def test_answer_period_dropped_before_punctuation() -> None:
    assert sentence(compose("I love _!", ["Cats."])) == "I love Cats!"
    assert sentence(compose("I love _ a lot", ["Cats."])) == "I love Cats. a lot"
