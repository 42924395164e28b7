"""Punchline: party card game backend that turns each winning answer into a short video."""
