"""`python -m ivr check`."""

from ivr.core.lint import check_command as check

__all__ = ["check"]
