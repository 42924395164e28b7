"""Real instances and players for the worker tests (the cluster tests' fixtures)."""

from tests.cluster.conftest import connect, instances, player

__all__ = ["connect", "instances", "player"]
