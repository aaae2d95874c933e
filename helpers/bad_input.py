"""The one error a reader raises for input it refuses: its message names the file, the row or record, the field and
what was expected."""


class BadInput(ValueError):
    """Input a reader refuses (a `ValueError`, so callers that catch those keep working)."""
