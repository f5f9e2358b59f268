"""The call record the dependency tracker schedules, its states and its errors.

Only the tracker changes a `Call`'s `state` and bookkeeping fields.
"""

from __future__ import annotations

import enum
from collections.abc import Hashable
from dataclasses import dataclass, field

CallId = Hashable
"""Any hashable value names a call: an int, a string, a ``(agent, step)`` tuple..."""


class CallState(str, enum.Enum):
    """Lifecycle of a call: ``pending -> ready -> running -> done``."""

    PENDING = "pending"  # waiting for at least one dependency
    READY = "ready"  # every dependency done; queued for pop_ready()
    RUNNING = "running"  # handed out by pop_ready()
    DONE = "done"  # completed; the tracker no longer holds it


@dataclass(slots=True, eq=False)
class Call:
    """One tracked call. ``remaining`` is the number of steps its workflow still has to
    run, this call included, as the caller estimates it (the ``fewest_remaining``
    priority reads it when the call becomes ready; ``None`` sorts last)."""

    id: CallId
    step: int
    deps: tuple[CallId, ...]
    remaining: float | None = None
    state: CallState = CallState.PENDING
    # Tracker bookkeeping: deps not yet done, and the calls waiting on this one
    # (``None`` until the first one and again once done).
    waiting: int = field(default=0, repr=False)
    dependents: list[Call] | None = field(default=None, repr=False)


class TrackerError(Exception):
    """Base class of the dependency tracker's errors."""


class UnknownCallError(TrackerError, LookupError):
    """A call id the tracker does not hold (never added, or already done)."""

    def __str__(self) -> str:  # LookupError would repr() a single argument
        return str(self.args[0]) if self.args else ""


class DuplicateCallError(TrackerError, ValueError):
    """A call id added twice while the first one is still tracked."""


class InvalidTransitionError(TrackerError, RuntimeError):
    """An operation that does not fit the call's state (e.g. completing a pending call)."""
