"""What a render job is: its priority and its order (pure: no I/O).

    WINNER       a round's winning combination: always rendered, never dropped
    POPULAR      pre-generation of the most played combinations
    SPECULATIVE  every revealed submission, ahead of the pick: dropped first under pressure

A `RenderOrder` is the job's payload, the same in Redis, in the local journal and in memory.
Its `job_key` deduplicates it in the queue: a winner's key names its room and round (each room
is told of its own win), the others name only the combination (one job per combination).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from app.core.cards import Combination
from app.video.combos import combination_of
from app.video.storage import sha_of_key


class Priority(IntEnum):
    WINNER = 0
    POPULAR = 1
    SPECULATIVE = 2

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, value: str | int) -> Priority:
        if isinstance(value, int):
            return cls(value)
        try:
            return cls[value.upper()]
        except KeyError:
            raise ValueError(f"unknown priority {value!r}") from None


# The pseudo-room of jobs that belong to no room (pre-generation, CLI retries of those).
NO_ROOM = "-"


@dataclass(frozen=True, slots=True)
class RenderOrder:
    black: str
    whites: tuple[str, ...]
    priority: Priority
    room: str = NO_ROOM  # the room code; video_ready / video_failed go to room:<code>
    round: int = 0
    public_gallery: bool = True
    enqueued_at: float = field(default_factory=time.time)

    def __post_init__(self) -> None:
        if not isinstance(self.priority, Priority):
            raise TypeError("priority must be a Priority")
        if self.priority is Priority.WINNER and self.room == NO_ROOM:
            raise ValueError("a winner's order needs its room")

    @classmethod
    def of(cls, combo: Combination, priority: Priority, **extra: Any) -> RenderOrder:
        return cls(combo.black, tuple(combo.whites), priority, **extra)

    def combination(self) -> Combination:
        return combination_of(self.black, list(self.whites))

    @property
    def sha(self) -> str:
        return sha_of_key(self.combination().key)

    @property
    def channel(self) -> str:
        return f"room:{self.room}"

    @property
    def job_key(self) -> str:
        if self.priority is Priority.WINNER:
            return f"winner:{self.sha}:{self.room}:{self.round}"
        return f"{self.priority.label}:{self.sha}"

    def to_dict(self) -> dict[str, Any]:
        return {"black": self.black, "whites": list(self.whites),
                "priority": self.priority.label, "room": self.room, "round": self.round,
                "public_gallery": self.public_gallery, "enqueued_at": self.enqueued_at}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def from_dict(cls, data: Any) -> RenderOrder:
        if not isinstance(data, dict):
            raise TypeError("a render order is a JSON object")
        whites = data.get("whites")
        if not isinstance(data.get("black"), str) or not isinstance(whites, list) or not all(
                isinstance(w, str) for w in whites):
            raise ValueError("a render order needs black (str) and whites (list of str)")
        return cls(data["black"], tuple(whites), Priority.parse(data.get("priority", "winner")),
                   room=str(data.get("room", NO_ROOM)), round=int(data.get("round", 0)),
                   public_gallery=bool(data.get("public_gallery", True)),
                   enqueued_at=float(data.get("enqueued_at", time.time())))

    @classmethod
    def from_json(cls, raw: str | bytes) -> RenderOrder:
        return cls.from_dict(json.loads(raw))
