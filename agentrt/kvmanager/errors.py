"""Errors raised by the KV bookkeeping."""


class OutOfPagesError(RuntimeError):
    """Raised when an allocation asks for more KV pages than are free."""
