"""Composition of a card combination: answers in the blanks (card rules: tests/game)."""

from __future__ import annotations

import pytest

from app.core.cards import (
    MAX_BLACK_CHARS,
    MAX_WHITE_CARDS,
    MAX_WHITE_CHARS,
    Combination,
    clean_text,
    count_blanks,
)
from app.video.errors import InvalidCardsError, VideoGenerationError
from app.video.text import Role, compose, sentence


def test_clean_text_drops_controls_and_fixes_surrogates() -> None:
    assert clean_text("a\x00b\x07c\td\ne") == "abc d e"
    assert clean_text("lone \ud800 surrogate") == "lone \ufffd surrogate"
    assert clean_text("pair \ud83c\udf55") == "pair \U0001f355"
    assert clean_text("\u202eevil\u202c  text\ufeff") == "evil text"
    assert clean_text("e\u0301") == "\u00e9"  # NFC
    assert clean_text("👨\u200d👩\u200d👧") == "👨\u200d👩\u200d👧"  # ZWJ kept


def test_bad_cards_are_what_the_game_catches() -> None:
    assert issubclass(InvalidCardsError, VideoGenerationError)
    assert issubclass(InvalidCardsError, ValueError)


def test_the_longest_allowed_combination_composes_whole() -> None:
    """Bug 1: the renderer refused white cards the deck loader accepted (150 vs 500)."""
    black, whites = Combination(
        "b" * (MAX_BLACK_CHARS - 2) + " _", ["w" * MAX_WHITE_CHARS] * MAX_WHITE_CARDS).display()
    segments = compose(black, whites)
    answers = [s.text for s in segments if s.role is Role.ANSWER]
    assert [len(a) for a in answers] == [MAX_WHITE_CHARS] * MAX_WHITE_CARDS
    assert len(sentence(segments)) >= MAX_BLACK_CHARS + MAX_WHITE_CARDS * MAX_WHITE_CHARS - 1


def test_blank_grammar_is_shared_with_the_game() -> None:
    """Bug 2: the game counted one blank in "I love _word_ and _.", the renderer three."""
    card = "I love _word_ and _."
    segments = compose(card, ["Cats", "Dogs", "Fish"])
    assert count_blanks(card) == 3
    assert sum(s.in_blank for s in segments) == count_blanks(card)
    assert sentence(segments) == "I love catsworddogs and fish."
    for card, blanks in [("I got _ed.", 1), ("Cats and_", 1), ("My i_ is _.", 2), ("Why?", 0),
                         ("___ vs ___", 2)]:
        assert count_blanks(card) == blanks
        assert sum(s.in_blank for s in compose(card, ["x", "y"])) == min(blanks, 2)


def test_compose_fills_blanks_in_order() -> None:
    segments = compose("_ + _ = _.", ["Ab", "Cd"])
    assert [(s.text, s.role, s.answer, s.in_blank) for s in segments] == [
        ("Ab", Role.ANSWER, 0, True),
        (" + ", Role.PROMPT, -1, False),
        ("cd", Role.ANSWER, 1, True),
        (" = ", Role.PROMPT, -1, False),
        ("_____", Role.PROMPT, -1, False),
        (".", Role.PROMPT, -1, False),
    ]


def test_compose_without_blank_puts_answers_below() -> None:
    segments = compose("What ends my day?", ["Naps.", "Tacos."])
    assert [s.paragraph for s in segments] == [False, True, True]
    assert sentence(segments) == "What ends my day? Naps. Tacos."


def test_answer_period_dropped_when_the_prompt_goes_on() -> None:
    assert sentence(compose("I love _!", ["Cats."])) == "I love cats!"
    assert sentence(compose("I love _ a lot", ["Cats."])) == "I love cats a lot"
    assert sentence(compose("I love _", ["Cats."])) == "I love cats."
    assert sentence(compose("I love _ a lot", ["Cats..."])) == "I love cats... a lot"


@pytest.mark.parametrize(
    ("black", "white", "expected"),
    [
        # mid-sentence: lower-cased
        ("I got paid in _.", "A zombie.", "I got paid in a zombie."),
        ("Why am I sticky? _ and _.", "Glue", "Why am I sticky? Glue and _____."),
        ("It's _ time!", "Soggy cereal", "It's soggy cereal time!"),
        ("I love _.", "Everything I own.", "I love everything I own."),
        # sentence, quotation or heading start: kept
        ("_ is my jam.", "A zombie", "A zombie is my jam."),
        ("Why? _.", "Cats", "Why? Cats."),
        ("Stop. _!", "Dogs", "Stop. Dogs!"),
        ('He said "_".', "Hello there", 'He said "Hello there".'),
        ("Next on TV: _.", "The news", "Next on TV: The news."),
        # acronyms, "I" and names: kept
        ("I love _.", "NASA rockets.", "I love NASA rockets."),
        ("I love _.", "DJs.", "I love DJs."),
        ("I love _.", "McDonald's.", "I love McDonald's."),
        ("I love _.", "I'm not sure.", "I love I'm not sure."),
        ("I love _.", "Darth Vader.", "I love Darth Vader."),
        ("I love _.", "Bill Nye the Science Guy.", "I love Bill Nye the Science Guy."),
        # nothing to lower
        ("I love _.", "42 cats.", "I love 42 cats."),
        ("I love _.", "\u00c9clairs.", "I love \u00e9clairs."),
    ],
)
def test_answers_mid_sentence_lose_their_capital(black: str, white: str, expected: str) -> None:
    assert sentence(compose(black, [white])) == expected


def test_answers_below_a_question_keep_their_capital() -> None:
    assert sentence(compose("What is love?", ["A zombie."])) == "What is love? A zombie."
