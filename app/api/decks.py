"""REST: the decks a room can be created with."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from app.game.registry import RoomRegistry, get_registry

router = APIRouter(prefix="/api/decks", tags=["decks"])


class DeckOut(BaseModel):
    id: str
    name: str
    description: str
    official: bool
    black_cards: int
    white_cards: int
    pick_counts: dict[str, int]  # number of black cards by pick: {"1": 66, "2": 10, "3": 4}


class DecksOut(BaseModel):
    decks: list[DeckOut]


@router.get("", response_model=DecksOut)
async def list_decks(registry: Annotated[RoomRegistry, Depends(get_registry)]) -> DecksOut:
    decks = []
    for deck in registry.library.all():
        picks: dict[str, int] = {}
        for card in deck.black:
            picks[str(card.pick)] = picks.get(str(card.pick), 0) + 1
        decks.append(
            DeckOut(
                id=deck.id,
                name=deck.name,
                description=deck.description,
                official=deck.official,
                black_cards=len(deck.black),
                white_cards=len(deck.white),
                pick_counts=dict(sorted(picks.items())),
            )
        )
    return DecksOut(decks=decks)
