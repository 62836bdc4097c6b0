"""Hooks of the check fixtures: `check` imports this file, as the app would, because it sits beside them."""

from ivr import hook


@hook
def check_lookup(ctx):
    """A stand-in for a customer lookup."""
    return {"outcome": "found", "vars": {"name": "Ada"}}
