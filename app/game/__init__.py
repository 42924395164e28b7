"""Game rules as plain state machines: rooms, decks, rounds and scores. No I/O."""
