"""One round: a black card, the czar, and the white cards played on it."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from app.game.cards import BlackCard, WhiteCard


class RoundPhase(StrEnum):
    SUBMITTING = "submitting"
    JUDGING = "judging"


@dataclass(eq=False, slots=True)
class Submission:
    player_id: str
    player_name: str  # kept for round_won if the author leaves while the czar judges
    cards: tuple[WhiteCard, ...]
    submission_id: str = ""  # opaque id, given when the submissions are revealed


@dataclass(eq=False, slots=True)
class Round:
    number: int
    czar_id: str
    black: BlackCard
    deadline: float | None  # clock time at which tick() moves the round on; None: no timer
    phase: RoundPhase = RoundPhase.SUBMITTING
    # Players expected to submit: connected, not the czar, holding enough cards.
    participants: set[str] = field(default_factory=set)
    submissions: dict[str, Submission] = field(default_factory=dict)  # by player id
    revealed: list[Submission] = field(default_factory=list)  # shuffled, once judging
    # Extra cards drawn for this black card, taken back if the round is voided.
    extra_drawn: dict[str, list[WhiteCard]] = field(default_factory=dict)

    @property
    def all_in(self) -> bool:
        """Every expected player has submitted, and there is something to judge."""
        return bool(self.submissions) and self.participants <= self.submissions.keys()

    def find_revealed(self, submission_id: str) -> Submission | None:
        return next((s for s in self.revealed if s.submission_id == submission_id), None)
