"""Players and their names."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field

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
    """Names are unique per room under this key (case-insensitive)."""
    return name.casefold()


@dataclass(eq=False, slots=True)
class Player:
    id: str
    name: str
    score: int = 0
    hand: list[WhiteCard] = field(default_factory=list)
    connected: bool = True
