"""Out-of-order dependency tracker: releases each call the moment its own deps are done.

There is no global step: completing a call touches only its direct dependents, and any
whose last outstanding dependency this was becomes ready at once. Dependencies must be
held when a call is added (a dep the tracker does not hold raises `UnknownCallError`),
so the call graph is always a DAG. A call is dropped once done: memory holds only live
calls, and a done call's id is unknown (and reusable).
"""

from __future__ import annotations

from collections.abc import Iterable

from agentrt.scheduler.call import (
    Call,
    CallId,
    CallState,
    DuplicateCallError,
    InvalidTransitionError,
    UnknownCallError,
)
from agentrt.scheduler.priority import ReadyQueue, make_priority
from agentrt.scheduler.tracker_integrity import check_tracker

PENDING, READY, RUNNING, DONE = (
    CallState.PENDING,
    CallState.READY,
    CallState.RUNNING,
    CallState.DONE,
)


class DependencyTracker:
    """Tracks calls and their dependencies; hands out ready calls in priority order.

    ``priority`` is a registered name (see `agentrt.scheduler.priority`) or a
    `ReadyQueue` instance. Not thread-safe: one thread drives it.
    """

    def __init__(self, priority: str | ReadyQueue = "fifo") -> None:
        self._queue = make_priority(priority) if isinstance(priority, str) else priority
        self._calls: dict[CallId, Call] = {}
        self._n_pending = 0
        self._n_ready = 0
        self._n_running = 0

    @property
    def priority(self) -> str:
        return self._queue.name

    @property
    def pending_count(self) -> int:
        return self._n_pending

    @property
    def ready_count(self) -> int:
        return self._n_ready

    @property
    def running_count(self) -> int:
        return self._n_running

    @property
    def live_count(self) -> int:
        """Calls held: pending + ready + running."""
        return len(self._calls)

    def __contains__(self, call_id: object) -> bool:
        return call_id in self._calls

    def get(self, call_id: CallId) -> Call:
        """The call named ``call_id``; `UnknownCallError` if not held."""
        call = self._calls.get(call_id)
        if call is None:
            raise UnknownCallError(f"unknown call {call_id!r}")
        return call

    def add(
        self,
        call_id: CallId,
        deps: Iterable[CallId] = (),
        *,
        step: int = 0,
        remaining: float | None = None,
    ) -> Call:
        """Track a new call; returns it (already ``ready`` if it has no deps).

        Raises `DuplicateCallError` if ``call_id`` is held, `UnknownCallError` if a dep
        is not; nothing changes then. Duplicate deps count once.
        """
        calls = self._calls
        if call_id in calls:
            raise DuplicateCallError(f"call {call_id!r} was already added")
        deps = tuple(dict.fromkeys(deps)) if deps else ()
        waiting: list[Call] = []
        for dep_id in deps:
            dep = calls.get(dep_id)
            if dep is None:
                what = "itself" if dep_id == call_id else f"unknown call {dep_id!r}"
                raise UnknownCallError(
                    f"call {call_id!r} depends on {what}; dependencies must be added "
                    "before their dependents and are dropped once done"
                )
            waiting.append(dep)
        call = Call(call_id, step, deps, remaining)
        calls[call_id] = call
        if waiting:
            for dep in waiting:
                if dep.dependents is None:
                    dep.dependents = [call]
                else:
                    dep.dependents.append(call)
            call.waiting = len(waiting)
            self._n_pending += 1
        else:
            call.state = READY
            self._queue.push(call)
            self._n_ready += 1
        return call

    def pop_ready(self, max_n: int | None = None) -> list[Call]:
        """Hand out up to ``max_n`` (default: all) ready calls in priority order.

        They become ``running``; the caller must later `complete` each one.
        """
        want = self._n_ready
        if max_n is not None:
            if max_n < 0:
                raise ValueError(f"max_n must be >= 0, got {max_n}")
            want = min(want, max_n)
        pop = self._queue.pop
        out = [pop() for _ in range(want)]
        for call in out:
            call.state = RUNNING
        self._n_ready -= want
        self._n_running += want
        return out

    def complete(self, call_id: CallId) -> None:
        """Mark a running call done (dropping it) and release each dependent whose deps
        are now all done."""
        call = self._calls.get(call_id)
        if call is None:
            raise UnknownCallError(f"cannot complete unknown call {call_id!r}")
        if call.state is not RUNNING:
            raise InvalidTransitionError(
                f"cannot complete call {call_id!r}: it is {call.state.value}, not running"
            )
        self._n_running -= 1
        call.state = DONE
        del self._calls[call_id]
        dependents = call.dependents
        if dependents is None:
            return
        call.dependents = None
        released = 0
        push = self._queue.push
        for dep in dependents:
            dep.waiting -= 1
            if not dep.waiting:
                dep.state = READY
                push(dep)
                released += 1
        self._n_pending -= released
        self._n_ready += released

    def check_integrity(self) -> None:
        """Recount states and dependency counters; `AssertionError` on any mismatch."""
        check_tracker(self)
