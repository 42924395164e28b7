"""Cards and the shuffled piles they are drawn from."""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

# The card rules (limits, blank grammar, `Combination`) live in app.core.cards; the combination of
# a play is built at the video layer's edge (app.video.combos.combination_of).
__all__ = ["BlackCard", "Pile", "WhiteCard", "default_draw"]


def default_draw(pick: int) -> int:
    """House rule: a pick-3 card lets every player draw 2 extra cards first."""
    return 2 if pick == 3 else 0


@dataclass(frozen=True, slots=True)
class WhiteCard:
    id: str  # "<deck_id>:w:<index>", stable across restarts for the same deck file
    text: str


@dataclass(frozen=True, slots=True)
class BlackCard:
    id: str  # "<deck_id>:b:<index>"
    text: str
    pick: int = 1
    draw: int = 0


C = TypeVar("C", WhiteCard, BlackCard)


class Pile(Generic[C]):
    """A draw pile and its discards, which are reshuffled when the draw pile runs out."""

    def __init__(self, cards: Iterable[C], rng: random.Random) -> None:
        self._rng = rng
        self._draw: list[C] = list(cards)
        self._discard: list[C] = []
        self._rng.shuffle(self._draw)
        self.reshuffles = 0

    @classmethod
    def restore(cls, draw: Iterable[C], discard: Iterable[C], reshuffles: int,
                rng: random.Random) -> Pile[C]:
        """A pile exactly as it was saved (no shuffle): see app/game/snapshot.py."""
        pile = cls((), rng)
        pile._draw, pile._discard, pile.reshuffles = list(draw), list(discard), reshuffles
        return pile

    @property
    def draw_order(self) -> list[C]:
        """The draw pile, next card last (what ``draw`` pops)."""
        return list(self._draw)

    @property
    def discards(self) -> list[C]:
        return list(self._discard)

    @property
    def remaining(self) -> int:
        return len(self._draw)

    @property
    def available(self) -> int:
        return len(self._draw) + len(self._discard)

    def draw(self, n: int = 1) -> list[C]:
        """Up to ``n`` cards; fewer only when draw and discard piles are both exhausted."""
        out: list[C] = []
        while len(out) < n:
            if not self._draw:
                if not self._discard:
                    break
                self._draw, self._discard = self._discard, []
                self._rng.shuffle(self._draw)
                self.reshuffles += 1
            out.append(self._draw.pop())
        return out

    def discard(self, cards: Iterable[C]) -> None:
        self._discard.extend(cards)

    def reset(self, cards: Iterable[C]) -> None:
        """Start over with ``cards`` shuffled and an empty discard pile (a new game)."""
        self._draw = list(cards)
        self._discard = []
        self._rng.shuffle(self._draw)
