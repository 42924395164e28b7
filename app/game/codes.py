"""Room codes: 5 characters from an alphabet without look-alikes (no 0/O, 1/I/L, 2/Z, 5/S, 8/B)."""

from __future__ import annotations

import random
from collections.abc import Container

ALPHABET = "34679ACDEFGHJKMNPQRTUVWXY"
CODE_LENGTH = 5
_MAX_ATTEMPTS = 1000


def generate_code(rng: random.Random, taken: Container[str] = ()) -> str:
    """A fresh code that is not in ``taken`` (25**5, about 9.8 million codes)."""
    for _ in range(_MAX_ATTEMPTS):
        code = "".join(rng.choice(ALPHABET) for _ in range(CODE_LENGTH))
        if code not in taken:
            return code
    raise RuntimeError("could not find a free room code")


def normalize_code(raw: str) -> str | None:
    """The canonical form of a code typed by a person, or None if it cannot be one.

    Case and surrounding spaces are ignored; look-alike characters are not guessed.
    """
    code = raw.strip().upper()
    if len(code) != CODE_LENGTH or any(ch not in ALPHABET for ch in code):
        return None
    return code
