"""Deck files in the JSON Against Humanity formats, loaded and validated.

Accepted shapes (https://github.com/crhallberg/json-against-humanity):

- compact: ``{"white": [str...], "black": [{"text", "pick"}...], "packs": [...]}``, where
  ``packs`` is a list of ``{"name", "id"?, "official"?, "description"?, "white": [index...],
  "black": [index...]}`` or an object of such packs keyed by abbreviation. Without ``packs``
  the whole file is one deck named after the file.
- full: a list of packs ``[{"name", "id"?, "official"?, "white": [{"text"}...],
  "black": [{"text", "pick"}...]}...]`` or an object of such packs keyed by abbreviation.

Each pack becomes a ``Deck``. Its id is the pack's ``id``, else a slug of its key or name; when
two derived ids collide (pack names that differ only in case) the later ones get ``-2``, ``-3``,
... in file order. Card ids are ``<deck_id>:w:<index>`` / ``<deck_id>:b:<index>``, where the
index is the card's position in the file's top-level list (compact) or in the pack's list
(full), so ids stay stable as long as the file does.

The card rules are those of `app.core.cards` (the renderer's too). A card that breaks one (too
long, empty, a ``pick`` outside 1 to 3, blanks that differ from its ``pick``) is *set aside*:
the rest of the file loads, and `load_library` logs one line per file with a count per reason
and the first few cards of each. Only a broken structure (invalid JSON, lists that are not
lists, pack indices out of range, bad pack names or ids) refuses the whole file. A pack left
with no playable card is skipped.
"""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from app.core.cards import CardError, check_black, check_text
from app.game.cards import BlackCard, WhiteCard, default_draw
from app.game.errors import DeckError

logger = logging.getLogger(__name__)

BUILTIN_DECK_DIR = Path(__file__).resolve().parents[1] / "decks"
BUILTIN_DECK_FILES = (BUILTIN_DECK_DIR / "punchline-cc0.json",)
DEFAULT_DECK_ID = "punchline-cc0"

MAX_FILE_BYTES = 16 * 1024 * 1024
MAX_CARDS_PER_FILE = 100_000
MAX_PACKS_PER_FILE = 2_000
MAX_DRAW = 3
EXAMPLES_PER_REASON = 3

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


@dataclass
class SetAside:
    """The unplayable cards of one file: a count per reason and the first few of each."""

    counts: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)

    def add(self, reason: str, where: str, raw: Any) -> None:
        self.counts[reason] += 1
        shown = self.examples.setdefault(reason, [])
        if len(shown) < EXAMPLES_PER_REASON:
            text = raw.get("text") if isinstance(raw, Mapping) else raw
            preview = text if isinstance(text, str) else type(text).__name__
            shown.append(f"{where} {preview[:40]!r}" + ("..." if len(preview) > 40 else ""))

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def summary(self) -> str:
        """``too_long 1 (black card 7 'It was ...'); bad_pick 2 (...)``, most frequent first."""
        return "; ".join(f"{reason} {n} ({', '.join(self.examples[reason])})"
                         for reason, n in self.counts.most_common())


@dataclass(frozen=True, slots=True)
class DeckFile:
    """What one file yields: its playable decks and what was set aside."""

    path: Path
    decks: list[Deck]
    set_aside: SetAside
    renamed: list[tuple[str, str]]  # (pack name, derived id) when the plain slug was taken


_Black = tuple[str, int, int]  # text, pick, draw


def slugify(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:64]
    return slug or "deck"


class _Reader:
    """Reads one file. Broken structure raises DeckError naming the file; bad cards are set
    aside."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.set_aside = SetAside()
        self.renamed: list[tuple[str, str]] = []
        self._explicit_ids: set[str] = set()
        self._ids: set[str] = set()

    def fail(self, problem: str) -> DeckError:
        return DeckError(self.path, problem)

    # --- cards: a bad one is set aside (None) --------------------------------------------------
    def white(self, raw: Any, where: str) -> str | None:
        text = raw.get("text") if isinstance(raw, Mapping) else raw
        try:
            return check_text(text, "white")
        except CardError as exc:
            self.set_aside.add(exc.reason, where, raw)
            return None

    def black(self, raw: Any, where: str) -> _Black | None:
        if isinstance(raw, str):  # tolerated: a bare prompt is a pick-1 card
            raw = {"text": raw}
        try:
            if not isinstance(raw, Mapping):
                raise CardError("not_text", "not an object with 'text' and 'pick'")
            text, pick = check_black(raw.get("text"), raw.get("pick", 1))
            draw = raw.get("draw", default_draw(pick))
            if not isinstance(draw, int) or isinstance(draw, bool) or not 0 <= draw <= MAX_DRAW:
                raise CardError("bad_draw", f"draw must be an integer from 0 to {MAX_DRAW}")
        except CardError as exc:
            self.set_aside.add(exc.reason, where, raw)
            return None
        return text, pick, draw

    # --- structure: a problem refuses the file -------------------------------------------------
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

    def pack_entries(self, packs: Any) -> list[tuple[str | None, Mapping[str, Any], str]]:
        """(key, pack object, description of where) for a list or an object of packs."""
        if isinstance(packs, Mapping):
            items: Iterable[tuple[str | None, Any]] = packs.items()
        elif isinstance(packs, list):
            items = ((None, pack) for pack in packs)
        else:
            raise self.fail("'packs' must be a list or an object")
        if len(packs) > MAX_PACKS_PER_FILE:
            raise self.fail(f"more than {MAX_PACKS_PER_FILE} packs")
        out = []
        for n, (key, pack) in enumerate(items):
            where = f"pack {key!r}" if key is not None else f"pack #{n}"
            if not isinstance(pack, Mapping):
                raise self.fail(f"{where} must be an object")
            deck_id = pack.get("id")
            if deck_id is not None:
                if not isinstance(deck_id, str) or not _DECK_ID.match(deck_id):
                    raise self.fail(f"{where}: id {deck_id!r} must match {_DECK_ID.pattern}")
                if deck_id in self._explicit_ids:
                    raise self.fail(f"deck id {deck_id!r} appears twice")
                self._explicit_ids.add(deck_id)
            out.append((key, pack, where))
        return out

    def _unique_id(self, slug: str, name: str) -> str:
        deck_id, n = slug, 1
        while deck_id in self._ids or deck_id in self._explicit_ids:
            n += 1
            suffix = f"-{n}"
            deck_id = slug[: 64 - len(suffix)] + suffix
        if deck_id != slug:
            self.renamed.append((name, deck_id))
        return deck_id

    def deck_meta(
        self, key: str | None, pack: Mapping[str, Any], where: str
    ) -> tuple[str, str, bool, str]:
        name = pack.get("name", key)
        if not isinstance(name, str) or not name.strip():
            raise self.fail(f"{where}: 'name' must be a non-empty string")
        deck_id = pack.get("id")
        if deck_id is None:
            deck_id = self._unique_id(slugify(key if key is not None else name), name.strip())
        self._ids.add(deck_id)
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
        black: Sequence[tuple[int, _Black | None]],
        white: Sequence[tuple[int, str | None]],
    ) -> Deck | None:
        deck_id, name, official, description = meta
        blacks = [(i, card) for i, card in black if card is not None]
        whites = [(i, text) for i, text in white if text is not None]
        if not blacks and not whites:
            self.set_aside.add("empty_pack", "pack", name)
            return None
        return Deck(
            id=deck_id,
            name=name,
            official=official,
            description=description,
            black=tuple(
                BlackCard(f"{deck_id}:b:{i}", text, pick, draw) for i, (text, pick, draw) in blacks
            ),
            white=tuple(WhiteCard(f"{deck_id}:w:{i}", text) for i, text in whites),
            source=str(self.path),
        )

    def compact(self, data: Mapping[str, Any]) -> Iterator[Deck | None]:
        whites = [
            self.white(raw, f"white card {i}")
            for i, raw in enumerate(self.card_list(data.get("white", []), "'white'"))
        ]
        blacks = [
            self.black(raw, f"black card {i}")
            for i, raw in enumerate(self.card_list(data.get("black", []), "'black'"))
        ]
        packs = data.get("packs")
        if packs is None:
            meta = (slugify(self.path.stem), self.path.stem, False, "")
            yield self.deck(meta, list(enumerate(blacks)), list(enumerate(whites)))
            return
        for key, pack, where in self.pack_entries(packs):
            meta = self.deck_meta(key, pack, where)
            b = self.indices(pack.get("black"), len(blacks), f"{where} 'black'")
            w = self.indices(pack.get("white"), len(whites), f"{where} 'white'")
            yield self.deck(meta, [(i, blacks[i]) for i in b], [(i, whites[i]) for i in w])

    def full(self, packs: Any) -> Iterator[Deck | None]:
        for key, pack, where in self.pack_entries(packs):
            meta = self.deck_meta(key, pack, where)
            raw_w = self.card_list(pack.get("white", []), f"{where} 'white'")
            raw_b = self.card_list(pack.get("black", []), f"{where} 'black'")
            white = [(i, self.white(r, f"{where} white card {i}")) for i, r in enumerate(raw_w)]
            black = [(i, self.black(r, f"{where} black card {i}")) for i, r in enumerate(raw_b)]
            yield self.deck(meta, black, white)

    def load(self) -> DeckFile:
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
            found = list(self.compact(data))
        elif isinstance(data, (list, Mapping)):
            found = list(self.full(data))
        else:
            raise self.fail("expected a JSON object or list of packs")
        if not found:
            raise self.fail("no packs in file")
        decks = [deck for deck in found if deck is not None]
        if not decks:
            raise self.fail(f"no playable card in file (set aside: {self.set_aside.summary()})")
        return DeckFile(self.path, decks, self.set_aside, self.renamed)


def read_deck_file(path: Path | str) -> DeckFile:
    """The playable decks of one file and what was set aside; raises DeckError naming the file
    when its structure is broken."""
    return _Reader(Path(path)).load()


def load_deck_file(path: Path | str) -> list[Deck]:
    """The playable decks of one file; raises DeckError naming the file and the problem."""
    return read_deck_file(path).decks


def log_deck_file(loaded: DeckFile) -> None:
    """One line per file, plus one naming what was set aside or renamed."""
    decks = loaded.decks
    logger.info("deck file %s: %d decks, %d black and %d white cards", loaded.path, len(decks),
                sum(len(d.black) for d in decks), sum(len(d.white) for d in decks))
    if loaded.set_aside.total:
        logger.warning("deck file %s: set aside %d unplayable cards or packs: %s", loaded.path,
                       loaded.set_aside.total, loaded.set_aside.summary())
    if loaded.renamed:
        logger.info("deck file %s: pack names with a taken id were given %s", loaded.path,
                    ", ".join(f"{name!r} -> {i}" for name, i in loaded.renamed))


@dataclass(frozen=True, slots=True)
class CardPool:
    """The cards of a set of decks, by id, each once."""

    white: dict[str, WhiteCard]
    black: dict[str, BlackCard]


class DeckLibrary:
    """The decks a server offers, by id."""

    def __init__(self, decks: Iterable[Deck]) -> None:
        self._decks: dict[str, Deck] = {}
        self._pools: dict[tuple[str, ...], CardPool] = {}
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

    def cards(self, deck_ids: Iterable[str]) -> CardPool:
        """The distinct cards of these decks, by id (memoised: rooms are rebuilt from snapshots
        often, and the decks never change while the process runs)."""
        key = tuple(deck_ids)
        pool = self._pools.get(key)
        if pool is None:
            decks = [self._decks[d] for d in key if d in self._decks]
            pool = CardPool({c.id: c for d in decks for c in d.white},
                            {c.id: c for d in decks for c in d.black})
            if len(self._pools) >= 64:
                self._pools.clear()
            self._pools[key] = pool
        return pool


def load_library(extra_paths: Iterable[Path | str] = (), *, builtin: bool = True) -> DeckLibrary:
    """The built-in deck plus every deck in ``extra_paths``, each file logged once. Fails on the
    first file whose structure is broken."""
    paths: list[Path | str] = [*BUILTIN_DECK_FILES] if builtin else []
    paths.extend(extra_paths)
    decks: list[Deck] = []
    for path in paths:
        loaded = read_deck_file(path)
        log_deck_file(loaded)
        decks.extend(loaded.decks)
    return DeckLibrary(decks)


@lru_cache(maxsize=1)
def get_deck_library() -> DeckLibrary:
    """The process-wide library from ``settings.extra_deck_paths``; call it at start-up to fail
    fast on a bad deck file."""
    from app.core.config import get_settings

    return load_library(get_settings().extra_deck_paths)
