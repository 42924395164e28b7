"""Deck files in the JSON Against Humanity formats, loaded and validated.

Accepted shapes (https://github.com/crhallberg/json-against-humanity):

- compact: ``{"white": [str...], "black": [{"text", "pick"}...], "packs": [...]}``, where
  ``packs`` is a list of ``{"name", "id"?, "official"?, "description"?, "white": [index...],
  "black": [index...]}`` or an object of such packs keyed by abbreviation. Without ``packs``
  the whole file is one deck named after the file.
- full: a list of packs ``[{"name", "id"?, "official"?, "white": [{"text"}...],
  "black": [{"text", "pick"}...]}...]`` or an object of such packs keyed by abbreviation.

Each pack becomes a ``Deck``. Its id is the pack's ``id``, else its key, else a slug of its name.
Card ids are ``<deck_id>:w:<index>`` / ``<deck_id>:b:<index>``, where the index is the card's
position in the file's top-level list (compact) or in the pack's list (full), so ids stay stable
as long as the file does.

Black cards: ``pick`` is 1 to 3 (default 1); ``draw`` is optional (default: 2 for pick 3, else 0).
A blank is a run of underscores touching no letter or digit. A card has either no blank (a
question; the answers follow it) or exactly ``pick`` blanks.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from app.game.cards import BlackCard, WhiteCard, count_blanks, default_draw
from app.game.errors import DeckError

BUILTIN_DECK_DIR = Path(__file__).resolve().parents[1] / "decks"
BUILTIN_DECK_FILES = (BUILTIN_DECK_DIR / "punchline-cc0.json",)
DEFAULT_DECK_ID = "punchline-cc0"

MAX_FILE_BYTES = 16 * 1024 * 1024
MAX_CARDS_PER_FILE = 100_000
MAX_PACKS_PER_FILE = 2_000
MAX_CARD_CHARS = 500
MAX_PICK = 3
MAX_DRAW = 3

_DECK_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


@dataclass(frozen=True, slots=True)
class Deck:
    id: str
    name: str
    official: bool
    description: str
    black: tuple[BlackCard, ...]
    white: tuple[WhiteCard, ...]
    source: str  # the file it came from


def slugify(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:64]
    return slug or "deck"


class _Reader:
    """Validates one file's JSON; every problem becomes a DeckError naming the file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, problem: str) -> DeckError:
        return DeckError(self.path, problem)

    def text(self, value: Any, where: str) -> str:
        if not isinstance(value, str):
            raise self.fail(f"{where}: text must be a string, got {type(value).__name__}")
        text = value.strip()
        if not text:
            raise self.fail(f"{where}: text is empty")
        if len(text) > MAX_CARD_CHARS:
            raise self.fail(f"{where}: text is longer than {MAX_CARD_CHARS} characters")
        return text

    def white_text(self, raw: Any, where: str) -> str:
        if isinstance(raw, Mapping):
            raw = raw.get("text")
        return self.text(raw, where)

    def black(self, raw: Any, where: str) -> tuple[str, int, int]:
        if isinstance(raw, str):  # tolerated: a bare prompt is a pick-1 card
            raw = {"text": raw}
        if not isinstance(raw, Mapping):
            raise self.fail(f"{where}: must be an object with 'text' and 'pick'")
        text = self.text(raw.get("text"), where)
        pick = raw.get("pick", 1)
        if not isinstance(pick, int) or isinstance(pick, bool) or not 1 <= pick <= MAX_PICK:
            raise self.fail(f"{where}: pick must be an integer from 1 to {MAX_PICK}, got {pick!r}")
        draw = raw.get("draw", default_draw(pick))
        if not isinstance(draw, int) or isinstance(draw, bool) or not 0 <= draw <= MAX_DRAW:
            raise self.fail(f"{where}: draw must be an integer from 0 to {MAX_DRAW}, got {draw!r}")
        blanks = count_blanks(text)
        if blanks not in (0, pick):
            raise self.fail(f"{where}: has {blanks} blanks but pick {pick} (use 0 or {pick})")
        return text, pick, draw

    def card_list(self, raw: Any, where: str) -> list[Any]:
        if not isinstance(raw, list):
            raise self.fail(f"{where} must be a list")
        if len(raw) > MAX_CARDS_PER_FILE:
            raise self.fail(f"{where} has more than {MAX_CARDS_PER_FILE} cards")
        return raw

    def indices(self, raw: Any, size: int, where: str) -> list[int]:
        items = self.card_list(raw if raw is not None else [], where)
        out: dict[int, None] = {}  # ordered, without duplicates
        for item in items:
            if not isinstance(item, int) or isinstance(item, bool) or not 0 <= item < size:
                raise self.fail(f"{where}: {item!r} is not a card index from 0 to {size - 1}")
            out[item] = None
        return list(out)

    def pack_entries(self, packs: Any) -> Iterator[tuple[str | None, Mapping[str, Any], str]]:
        """(key, pack object, description of where) for a list or an object of packs."""
        if isinstance(packs, Mapping):
            items: Iterable[tuple[str | None, Any]] = packs.items()
            count = len(packs)
        elif isinstance(packs, list):
            items = ((None, pack) for pack in packs)
            count = len(packs)
        else:
            raise self.fail("'packs' must be a list or an object")
        if count > MAX_PACKS_PER_FILE:
            raise self.fail(f"more than {MAX_PACKS_PER_FILE} packs")
        for n, (key, pack) in enumerate(items):
            where = f"pack {key!r}" if key is not None else f"pack #{n}"
            if not isinstance(pack, Mapping):
                raise self.fail(f"{where} must be an object")
            yield key, pack, where

    def deck_meta(
        self, key: str | None, pack: Mapping[str, Any], where: str
    ) -> tuple[str, str, bool, str]:
        name = pack.get("name", key)
        if not isinstance(name, str) or not name.strip():
            raise self.fail(f"{where}: 'name' must be a non-empty string")
        deck_id = pack.get("id")
        if deck_id is None:
            deck_id = slugify(key if key is not None else name)
        elif not isinstance(deck_id, str) or not _DECK_ID.match(deck_id):
            raise self.fail(f"{where}: id {deck_id!r} must match {_DECK_ID.pattern}")
        official = pack.get("official", False)
        if not isinstance(official, bool):
            raise self.fail(f"{where}: 'official' must be true or false")
        description = pack.get("description", "")
        if not isinstance(description, str):
            description = ""
        return deck_id, name.strip(), official, description

    def deck(
        self,
        meta: tuple[str, str, bool, str],
        black: Sequence[tuple[int, tuple[str, int, int]]],
        white: Sequence[tuple[int, str]],
        where: str,
    ) -> Deck:
        deck_id, name, official, description = meta
        if not black and not white:
            raise self.fail(f"{where} ({deck_id}) has no cards")
        return Deck(
            id=deck_id,
            name=name,
            official=official,
            description=description,
            black=tuple(
                BlackCard(f"{deck_id}:b:{i}", text, pick, draw) for i, (text, pick, draw) in black
            ),
            white=tuple(WhiteCard(f"{deck_id}:w:{i}", text) for i, text in white),
            source=str(self.path),
        )

    def compact(self, data: Mapping[str, Any]) -> list[Deck]:
        whites = [
            self.white_text(raw, f"white card {i}")
            for i, raw in enumerate(self.card_list(data.get("white", []), "'white'"))
        ]
        blacks = [
            self.black(raw, f"black card {i}")
            for i, raw in enumerate(self.card_list(data.get("black", []), "'black'"))
        ]
        packs = data.get("packs")
        if packs is None:
            meta = (slugify(self.path.stem), self.path.stem, False, "")
            return [self.deck(meta, list(enumerate(blacks)), list(enumerate(whites)), "file")]
        decks = []
        for key, pack, where in self.pack_entries(packs):
            meta = self.deck_meta(key, pack, where)
            b = self.indices(pack.get("black"), len(blacks), f"{where} 'black'")
            w = self.indices(pack.get("white"), len(whites), f"{where} 'white'")
            decks.append(
                self.deck(meta, [(i, blacks[i]) for i in b], [(i, whites[i]) for i in w], where)
            )
        return decks

    def full(self, packs: Any) -> list[Deck]:
        decks = []
        for key, pack, where in self.pack_entries(packs):
            meta = self.deck_meta(key, pack, where)
            raw_w = self.card_list(pack.get("white", []), f"{where} 'white'")
            raw_b = self.card_list(pack.get("black", []), f"{where} 'black'")
            white = [
                (i, self.white_text(r, f"{where} white card {i}")) for i, r in enumerate(raw_w)
            ]
            black = [(i, self.black(r, f"{where} black card {i}")) for i, r in enumerate(raw_b)]
            decks.append(self.deck(meta, black, white, where))
        return decks

    def load(self) -> list[Deck]:
        try:
            size = self.path.stat().st_size
            if size > MAX_FILE_BYTES:
                raise self.fail(f"file is larger than {MAX_FILE_BYTES} bytes")
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except DeckError:
            raise
        except json.JSONDecodeError as exc:
            raise self.fail(
                f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
            ) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise self.fail(f"cannot read file: {exc}") from exc
        if isinstance(data, Mapping) and ("white" in data or "black" in data):
            decks = self.compact(data)
        elif isinstance(data, (list, Mapping)):
            decks = self.full(data)
        else:
            raise self.fail("expected a JSON object or list of packs")
        if not decks:
            raise self.fail("no packs in file")
        seen: set[str] = set()
        for deck in decks:
            if deck.id in seen:
                raise self.fail(f"deck id {deck.id!r} appears twice")
            seen.add(deck.id)
        return decks


def load_deck_file(path: Path | str) -> list[Deck]:
    """The decks of one file; raises DeckError naming the file and the problem."""
    return _Reader(Path(path)).load()


class DeckLibrary:
    """The decks a server offers, by id."""

    def __init__(self, decks: Iterable[Deck]) -> None:
        self._decks: dict[str, Deck] = {}
        for deck in decks:
            if deck.id in self._decks:
                other = self._decks[deck.id].source
                raise DeckError(deck.source, f"deck id {deck.id!r} is already used by {other}")
            self._decks[deck.id] = deck

    def __contains__(self, deck_id: object) -> bool:
        return deck_id in self._decks

    def __len__(self) -> int:
        return len(self._decks)

    def get(self, deck_id: str) -> Deck | None:
        return self._decks.get(deck_id)

    def all(self) -> list[Deck]:
        return list(self._decks.values())


def load_library(extra_paths: Iterable[Path | str] = (), *, builtin: bool = True) -> DeckLibrary:
    """The built-in deck plus every deck in ``extra_paths``. Fails on the first bad file."""
    paths: list[Path | str] = [*BUILTIN_DECK_FILES] if builtin else []
    paths.extend(extra_paths)
    return DeckLibrary(deck for path in paths for deck in load_deck_file(path))


@lru_cache(maxsize=1)
def get_deck_library() -> DeckLibrary:
    """The process-wide library from ``settings.extra_deck_paths``; call it at start-up to fail
    fast on a bad deck file."""
    from app.core.config import get_settings

    return load_library(get_settings().extra_deck_paths)
