"""Room state shared by every instance: records, their stores (Redis or in-process), the
transaction loop that applies a game transition to a room, and the instances' heartbeats.

See docs/game.md, "Shared state".
"""
