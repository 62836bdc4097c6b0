"""`python -m ivr graph`."""

from ivr.core.graph import graph_command as graph

__all__ = ["graph"]
