"""The call record the dependency tracker schedules, its states and its errors.

A *call* is one model invocation of one agent in one workflow. The tracker owns the
`Call` objects it hands out; callers read them and may attach data through `payload`,
but only the tracker changes `state`, `error` and the bookkeeping fields.
"""

from __future__ import annotations

import enum
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

CallId = Hashable
"""Any hashable value names a call: an int, a string, a ``(workflow_id, n)`` tuple..."""


class CallState(str, enum.Enum):
    """Lifecycle of a call.

    ``pending -> ready -> running -> done | failed``; ``pending``, ``ready`` and a
    ``running`` call whose workflow is cancelled end ``cancelled``; ``pending`` ends
    ``failed`` when a dependency fails.
    """

    PENDING = "pending"  # waiting for at least one dependency
    READY = "ready"  # every dependency done; queued for pop_ready()
    RUNNING = "running"  # handed out by pop_ready()
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        """True for ``done``, ``failed`` and ``cancelled``."""
        return self in _TERMINAL


_TERMINAL = frozenset({CallState.DONE, CallState.FAILED, CallState.CANCELLED})


@dataclass(slots=True, eq=False)
class Call:
    """One tracked call.

    ``remaining`` is the number of steps its workflow still has to run, this call
    included, as the caller estimates it (the ``fewest_remaining`` priority reads it
    when the call becomes ready; ``None`` sorts last). ``cancel_requested`` is set on a
    running call whose workflow was cancelled: the runtime should abort it. Timestamps
    come from the tracker's clock (``time.monotonic`` by default); ``None`` until reached.
    """

    id: CallId
    workflow_id: Hashable
    agent: str
    step: int
    deps: tuple[CallId, ...]
    payload: Any = None
    remaining: float | None = None
    state: CallState = CallState.PENDING
    error: BaseException | None = None
    cancel_requested: bool = False
    added_at: float | None = None
    ready_at: float | None = None  # released: every dependency done
    started_at: float | None = None  # handed out by pop_ready()
    finished_at: float | None = None
    # Tracker bookkeeping: deps not yet done, and the calls waiting on this one
    # (``None`` until the first one and again once terminal).
    waiting: int = field(default=0, repr=False)
    dependents: list[Call] | None = field(default=None, repr=False)


class TrackerError(Exception):
    """Base class of the dependency tracker's errors."""


class UnknownCallError(TrackerError, LookupError):
    """A call id the tracker does not know (never added, or forgotten/pruned)."""

    def __str__(self) -> str:  # LookupError would repr() a single argument
        return str(self.args[0]) if self.args else ""


class DuplicateCallError(TrackerError, ValueError):
    """A call id added twice while the first one is still tracked."""


class InvalidTransitionError(TrackerError, RuntimeError):
    """An operation that does not fit the call's state (e.g. completing a pending call)."""


class DependencyFailedError(TrackerError):
    """Set as ``Call.error`` on a call that can never run because a dependency failed.

    ``cause`` (also ``__cause__``) is the original exception of ``root_id``, the call
    whose failure started the chain; ``dep_id`` is the direct dependency that failed.
    """

    def __init__(
        self, call_id: CallId, dep_id: CallId, root_id: CallId, cause: BaseException | None
    ) -> None:
        super().__init__(
            f"call {call_id!r} failed: dependency {dep_id!r} failed"
            + (f" (root cause in {root_id!r}: {cause!r})" if root_id != dep_id else f": {cause!r}")
        )
        self.call_id = call_id
        self.dep_id = dep_id
        self.root_id = root_id
        self.cause = cause
        self.__cause__ = cause


class CallCancelledError(TrackerError):
    """Set as ``Call.error`` on a cancelled call.

    ``workflow_id`` is the workflow whose cancellation started it; ``dep_id`` is the
    cancelled dependency when the call was cancelled because of one (else ``None``).
    """

    def __init__(
        self, call_id: CallId, workflow_id: Hashable, dep_id: CallId | None = None
    ) -> None:
        why = f"dependency {dep_id!r} was cancelled" if dep_id is not None else "cancelled"
        super().__init__(f"call {call_id!r} {why} (workflow {workflow_id!r} cancelled)")
        self.call_id = call_id
        self.workflow_id = workflow_id
        self.dep_id = dep_id
