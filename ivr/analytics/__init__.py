"""The call journal and its reports."""

__all__ = []
