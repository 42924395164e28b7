"""Key derivation: canonical, unambiguous, documented by a test vector."""

from __future__ import annotations

import hashlib

import pytest

from app.cache import keys
from app.cache.keys import key_for
from app.core.cards import (
    KEY_PREFIX,
    MAX_BLACK_CHARS,
    MAX_WHITE_CARDS,
    MAX_WHITE_CHARS,
    Combination,
    canonical_encoding,
    check_combination,
)

# The test vector of docs/cache.md: another service must compute the same key.
VECTOR_BLACK = "What's the secret to happiness?"
VECTOR_WHITES = ["Cats with opposable thumbs"]
VECTOR_ENCODING = b"31:What's the secret to happiness?,26:Cats with opposable thumbs,"
VECTOR_KEY = "video:" + hashlib.sha256(VECTOR_ENCODING).hexdigest()


def test_test_vector_matches_docs() -> None:
    assert canonical_encoding(VECTOR_BLACK, VECTOR_WHITES) == VECTOR_ENCODING
    assert key_for(VECTOR_BLACK, VECTOR_WHITES) == VECTOR_KEY
    assert VECTOR_KEY == "video:93220a51027cebda68f8fbbd0abd2b8f7b4733159482ed8510e8e0d683c84b3f"


def test_normalisation_is_pinned() -> None:
    """NFC and strip, byte for byte as before the card rules moved to app/core/cards.py:
    a change here would orphan every permanent entry. (Key computed by the old keys.py.)"""
    black, whites = "  Cafe\u0301 _ \n", ["\tNa\u0303o  ", "Z\u00fcrich"]
    expected = "video:1e01ffc109f42dc8f1bdb95ca3f7f0be7b959f912f011207be0d6b87eb04dace"
    assert key_for(black, whites) == expected
    assert Combination(black, whites).key == expected
    assert canonical_encoding(*check_combination(black, whites)) == (
        "7:Caf\u00e9 _,4:N\u00e3o,7:Z\u00fcrich,".encode())


def test_card_rules_have_one_home() -> None:
    # keys.py only memoises key_for: the prefix, limits and normalisation live in app.core.cards.
    assert KEY_PREFIX == "video:"
    for name in ("KEY_PREFIX", "MAX_WHITE_CARDS", "normalize_card", "validate_cards"):
        assert not hasattr(keys, name), name


def test_key_format() -> None:
    key = key_for("a", ["b"])
    prefix, digest = key.split(":")
    assert prefix == "video"
    assert len(digest) == 64
    assert set(digest) <= set("0123456789abcdef")


def test_separators_are_not_ambiguous() -> None:
    assert key_for("a|b", ["c"]) != key_for("a", ["b|c"])
    assert key_for("a,", ["b"]) != key_for("a", [",b"])
    assert key_for("1:a,", ["b"]) != key_for("1", ["a", "b"])


def test_white_card_order_matters() -> None:
    assert key_for("_ and _", ["x", "y"]) != key_for("_ and _", ["y", "x"])


def test_whitespace_and_unicode_normalisation() -> None:
    composed, decomposed = "Caf\u00e9", "Cafe\u0301"
    assert key_for(f"  {composed} ", [" ok "]) == key_for(decomposed, ["ok"])


def test_non_ascii_encoding_counts_bytes() -> None:
    assert canonical_encoding("é", ["ü"]) == "2:é,2:ü,".encode()


@pytest.mark.parametrize(
    ("black", "whites", "error"),
    [
        (None, ["a"], TypeError),
        ("", ["a"], ValueError),
        ("   ", ["a"], ValueError),
        ("b" * 1001, ["a"], ValueError),
        ("b" * (MAX_BLACK_CHARS + 1), ["a"], ValueError),
        ("b", ["a" * (MAX_WHITE_CHARS + 1)], ValueError),
        ("b", ["a"] * (MAX_WHITE_CARDS + 1), ValueError),
        ("b", ["\x00"], ValueError),
        ("b", "a", TypeError),
        ("b", [], ValueError),
        ("b", [""], ValueError),
        ("b", [" \t"], ValueError),
        ("b", [1], TypeError),
        ("b", ["a"] * 11, ValueError),
        ("b", ["a" * 1001], ValueError),
    ],
)
def test_bad_cards_are_refused(black: object, whites: object, error: type[Exception]) -> None:
    with pytest.raises(error, match="black_card|white_cards"):
        key_for(black, whites)


def test_the_longest_allowed_cards_have_a_key() -> None:
    whites = ["w" * MAX_WHITE_CHARS] * MAX_WHITE_CARDS
    assert key_for("b" * MAX_BLACK_CHARS, whites).startswith("video:")
