"""Pausing the cyclic garbage collector while many long-lived objects are built (loading, machines)."""

from __future__ import annotations

import contextlib
import gc

__all__ = ["gc_paused"]


@contextlib.contextmanager
def gc_paused():
    """Pause the cyclic garbage collector while building many objects that all stay alive.

    Loading makes hundreds of thousands of long-lived objects; each collection would walk them
    all again, making a 10,000-state flow load in quadratic rather than linear time.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
