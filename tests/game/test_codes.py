from __future__ import annotations

import random

import pytest

from app.game.codes import ALPHABET, CODE_LENGTH, generate_code, normalize_code


def test_alphabet_has_no_look_alikes() -> None:
    for ch in "0O1IL2Z5S8B":
        assert ch not in ALPHABET
    assert len(set(ALPHABET)) == len(ALPHABET)


def test_generated_codes_use_the_alphabet() -> None:
    rng = random.Random(1)
    for _ in range(200):
        code = generate_code(rng)
        assert len(code) == CODE_LENGTH
        assert set(code) <= set(ALPHABET)


def test_generated_code_avoids_taken_codes() -> None:
    first = generate_code(random.Random(3))
    second = generate_code(random.Random(3), taken={first})
    assert second != first


def test_generate_gives_up_when_everything_is_taken() -> None:
    class Everything:
        def __contains__(self, item: object) -> bool:
            return True

    with pytest.raises(RuntimeError):
        generate_code(random.Random(0), Everything())


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("ACDEF", "ACDEF"),
        ("  acdef ", "ACDEF"),
        ("ACDE", None),
        ("ACDEFG", None),
        ("ACDE0", None),
        ("OACDE", None),
        ("", None),
    ],
)
def test_normalize_code(raw: str, expected: str | None) -> None:
    assert normalize_code(raw) == expected
