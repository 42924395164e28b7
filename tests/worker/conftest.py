"""Real instances and players for the worker tests (the cluster tests' fixtures)."""

from tests.cluster.conftest import instances, player

__all__ = ["instances", "player"]
