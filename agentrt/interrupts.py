"""Ctrl-C and SIGTERM for the commands.

SIGTERM is turned into `Terminated`, a KeyboardInterrupt, so one cleanup path serves both
signals; the command exits 130 (SIGINT) or 143 (SIGTERM). Worker processes ignore SIGINT
and die on SIGTERM, so the parent alone decides when they stop.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class Terminated(KeyboardInterrupt):
    """The process received SIGTERM."""


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated


@contextmanager
def sigterm_raises() -> Iterator[None]:
    """Inside the block SIGTERM raises `Terminated` (on the main thread, where Python runs
    signal handlers; elsewhere the block runs unchanged)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def interrupts_deferred() -> Iterator[None]:
    """Inside the block SIGINT and SIGTERM are only noted; the first one is raised (as
    KeyboardInterrupt or `Terminated`) when the block ends. For work an interrupt would
    leave half done, like importing torch."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    noted: list[int] = []

    def note(signum: int, frame: object) -> None:
        noted.append(signum)

    previous = {s: signal.signal(s, note) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if noted:
        raise Terminated if noted[0] == signal.SIGTERM else KeyboardInterrupt


def exit_status(interrupt: KeyboardInterrupt) -> int:
    """The shell's status for death by the signal: 128 + SIGTERM or 128 + SIGINT."""
    return 128 + (signal.SIGTERM if isinstance(interrupt, Terminated) else signal.SIGINT)


def worker_signals() -> None:
    """Initialiser of worker processes: ignore Ctrl-C, die on SIGTERM."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
