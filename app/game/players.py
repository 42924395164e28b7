"""Players and their names."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache

from app.game.cards import WhiteCard
from app.game.errors import InvalidName

MAX_NAME_CHARS = 24


def clean_name(raw: str) -> str:
    """Trimmed, inner whitespace collapsed; 1 to 24 printable characters."""
    if not isinstance(raw, str):
        raise InvalidName("name must be a string")
    name = " ".join(unicodedata.normalize("NFC", raw).split())
    if not name:
        raise InvalidName("name must not be empty")
    if len(name) > MAX_NAME_CHARS:
        raise InvalidName(f"name must be at most {MAX_NAME_CHARS} characters")
    if any(unicodedata.category(ch).startswith("C") for ch in name):
        raise InvalidName("name must not contain control or invisible characters")
    return name


def name_key(name: str) -> str:
    """Names are unique per room under this key, so nobody can sit next to a look-alike.

    NFKC folds compatibility forms (fullwidth, ligatures, math letters), ``casefold`` folds case,
    then each character is replaced by its prototype from the Unicode confusables data (the UTS
    #39 skeleton, with the data of confusable_homoglyphs). So Cyrillic "Р0", Greek "Ρ0" and
    fullwidth "Ｐ0" collide with Latin "P0" (all ``pO``), and "Іvan" (Cyrillic І) with "Ivan".
    """
    table = _prototypes()
    return "".join(table.get(ch, ch) for ch in unicodedata.normalize("NFKC", name).casefold())


@lru_cache(maxsize=1)
def _prototypes() -> dict[str, str]:
    """Confusable character -> its prototype (one or more characters).

    The library's data lists, for a source character, its single prototype, and for a prototype
    all its sources. A pair that lists only each other keeps the smaller code point.
    """
    from confusable_homoglyphs import confusables  # loads 0.9 MB of data: on first use only

    data = confusables.confusables_data
    direct: dict[str, str] = {}
    for ch, glyphs in data.items():
        if len(ch) != 1 or len(glyphs) != 1:
            continue
        target = glyphs[0]["c"]
        back = data.get(target, [])
        if len(back) == 1 and back[0]["c"] == ch and target > ch:
            continue  # a symmetric pair: the smaller one is the prototype
        direct[ch] = target

    def resolve(text: str, depth: int = 0) -> str:
        if depth > 4:  # the data has no long chains; this only guards against a cycle
            return text
        out = "".join(direct.get(c, c) for c in text)
        return out if out == text else resolve(out, depth + 1)

    return {ch: resolve(ch) for ch in direct}


@dataclass(eq=False, slots=True)
class Player:
    id: str
    name: str
    score: int = 0
    hand: list[WhiteCard] = field(default_factory=list)
    connected: bool = True
