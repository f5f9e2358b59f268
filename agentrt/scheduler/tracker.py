"""Out-of-order dependency tracker: releases each call the moment its own deps are done.

There is no global step: completing a call touches only its direct dependents
(O(out-degree)), and any of them whose last outstanding dependency this was becomes
ready at once, whatever its step and whatever else is still running.

Semantics:

- **Dependencies must exist when a call is added** (no forward declarations). A dep on
  an unknown id raises `UnknownCallError`. Hence the call graph is always a DAG: a new
  call can only point at existing calls and an existing call never gains deps, so
  there is no cycle check to make (and a call cannot depend on itself).
- A dep on a ``done`` call is satisfied; on a ``failed`` call the new call is born
  ``failed`` (`DependencyFailedError`, original cause chained); on a ``cancelled`` call
  or a running call marked ``cancel_requested`` it is born ``cancelled``.
- `fail` fails every transitive dependent, in any workflow; `cancel_workflow` cancels the
  workflow's pending/ready calls and, transitively, their dependents in any workflow
  (they could never run). Running calls are only *marked* ``cancel_requested`` and
  stay running until the runtime, having aborted them, reports `complete` or `fail`:
  either then ends them ``cancelled``.
- Memory: terminal calls stay queryable (`get`, and as deps of new calls) until
  `forget` / `forget_workflow` drops them, after which their ids are unknown. With
  ``prune=True`` every call is dropped the moment it is terminal: memory then holds only
  live calls, for callers whose dependents are added before their deps finish (trace
  replay, simulations, benchmarks).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Iterable
from typing import Any

from agentrt.scheduler.call import (
    Call,
    CallCancelledError,
    CallId,
    CallState,
    DependencyFailedError,
    DuplicateCallError,
    InvalidTransitionError,
    UnknownCallError,
)
from agentrt.scheduler.priority import ReadyQueue, make_priority
from agentrt.scheduler.tracker_integrity import check_tracker

PENDING, READY, RUNNING = CallState.PENDING, CallState.READY, CallState.RUNNING
DONE, FAILED, CANCELLED = CallState.DONE, CallState.FAILED, CallState.CANCELLED


class DependencyTracker:
    """Tracks calls and their dependencies; hands out ready calls in priority order.

    ``priority`` is a registered name (see `agentrt.scheduler.priority`) or a
    `ReadyQueue` instance. ``clock`` stamps the calls' timestamps. Not thread-safe: the
    runtime drives it from one event loop.
    """

    def __init__(
        self,
        priority: str | ReadyQueue = "fifo",
        *,
        prune: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._queue = make_priority(priority) if isinstance(priority, str) else priority
        self._prune = prune
        self._clock = clock
        self._calls: dict[CallId, Call] = {}
        self._workflows: dict[Hashable, dict[CallId, Call]] = {}
        self._n_pending = 0
        self._n_ready = 0
        self._n_running = 0

    # -- queries ---------------------------------------------------------------------

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
        """Calls not yet terminal (pending + ready + running)."""
        return self._n_pending + self._n_ready + self._n_running

    def __len__(self) -> int:
        """Calls held, terminal ones not yet forgotten included."""
        return len(self._calls)

    def __contains__(self, call_id: object) -> bool:
        return call_id in self._calls

    def get(self, call_id: CallId) -> Call:
        """The call named ``call_id``; `UnknownCallError` if not held."""
        call = self._calls.get(call_id)
        if call is None:
            raise UnknownCallError(f"unknown call {call_id!r}")
        return call

    # -- adding and releasing --------------------------------------------------------

    def add(
        self,
        call_id: CallId,
        deps: Iterable[CallId] = (),
        *,
        workflow_id: Hashable = None,
        agent: str = "",
        step: int = 0,
        payload: Any = None,
        remaining: float | None = None,
    ) -> Call:
        """Track a new call; returns it (already ``ready`` if every dep is done).

        Raises `DuplicateCallError` if ``call_id`` is held, `UnknownCallError` if a dep
        is not; nothing changes then. Duplicate deps count once.
        """
        calls = self._calls
        if call_id in calls:
            raise DuplicateCallError(f"call {call_id!r} was already added")
        deps = tuple(deps)
        if len(deps) > 1:
            deps = tuple(dict.fromkeys(deps))
        waiting: list[Call] = []  # deps not done yet
        blocker = None  # first failed/cancelled dep, if any
        for dep_id in deps:
            dep = calls.get(dep_id)
            if dep is None:
                what = "itself" if dep_id == call_id else f"unknown call {dep_id!r}"
                raise UnknownCallError(
                    f"call {call_id!r} depends on {what}; dependencies must be added "
                    "before their dependents (terminal calls may have been forgotten)"
                )
            state = dep.state
            if state is not DONE:
                if blocker is None and (
                    state is FAILED or state is CANCELLED or dep.cancel_requested
                ):
                    blocker = dep
                waiting.append(dep)
        now = self._clock()
        call = Call(call_id, workflow_id, agent, step, deps, payload, remaining, added_at=now)
        calls[call_id] = call
        wf = self._workflows.get(workflow_id)
        if wf is None:
            wf = self._workflows[workflow_id] = {}
        wf[call_id] = call

        if blocker is not None:
            self._end_blocked(call, blocker, now)
        elif waiting:
            for dep in waiting:
                if dep.dependents is None:
                    dep.dependents = [call]
                else:
                    dep.dependents.append(call)
            call.waiting = len(waiting)
            self._n_pending += 1
        else:
            call.state = READY
            call.ready_at = now
            self._queue.push(call)
            self._n_ready += 1
        return call

    def pop_ready(self, max_n: int | None = None) -> list[Call]:
        """Hand out up to ``max_n`` (default: all) ready calls in priority order.

        They become ``running``; the caller must later `complete` or `fail` each one.
        """
        want = self._n_ready
        if max_n is not None:
            if max_n < 0:
                raise ValueError(f"max_n must be >= 0, got {max_n}")
            want = min(want, max_n)
        if not want:
            return []
        out: list[Call] = []
        append = out.append
        pop = self._queue.pop
        now = self._clock()
        got = 0
        while got < want:
            call = pop()
            if call.state is READY:  # else a stale entry: cancelled while queued
                call.state = RUNNING
                call.started_at = now
                append(call)
                got += 1
        self._n_ready -= got
        self._n_running += got
        return out

    # -- finishing -------------------------------------------------------------------

    def complete(self, call_id: CallId) -> None:
        """Mark a running call done and release each dependent whose deps are now all done."""
        call = self._calls.get(call_id)
        if call is None or call.state is not RUNNING:
            call = self._running(call_id, "complete")  # raises the right error
        self._n_running -= 1
        now = call.finished_at = self._clock()
        if call.cancel_requested:
            self._end_cancel_requested(call)
            return
        call.state = DONE
        dependents = call.dependents
        if dependents is not None:
            call.dependents = None
            released = 0
            push = self._queue.push
            for dep in dependents:
                if dep.state is PENDING:  # else failed/cancelled meanwhile by another path
                    dep.waiting -= 1
                    if not dep.waiting:
                        dep.state = READY
                        dep.ready_at = now
                        push(dep)
                        released += 1
            self._n_pending -= released
            self._n_ready += released
        if self._prune:
            self._drop(call)

    def fail(self, call_id: CallId, error: BaseException) -> list[Call]:
        """Mark a running call failed and fail all its transitive dependents.

        Returns the calls failed: this one first, then its dependents, each with a
        `DependencyFailedError` chaining ``error``. Other workflows' calls that do not
        depend on it are untouched. A call marked ``cancel_requested`` ends
        ``cancelled`` instead and ``[]`` is returned.
        """
        call = self._running(call_id, "fail")
        self._n_running -= 1
        now = call.finished_at = self._clock()
        if call.cancel_requested:
            self._end_cancel_requested(call)
            return []
        call.state = FAILED
        call.error = error
        root = call.id
        failed = [call]
        self._propagate(
            call,
            FAILED,
            lambda c, dep: DependencyFailedError(c.id, dep.id, root, error),
            now,
            failed,
        )
        return failed

    def cancel_workflow(self, workflow_id: Hashable) -> list[Call]:
        """Cancel a workflow; returns the calls affected, in the order they were added.

        Its pending and ready calls end ``cancelled``, as do (transitively) all calls
        depending on them. Its running calls are marked ``cancel_requested`` and
        returned too: the runtime must abort them (releasing their KV locks) and report
        `complete` or `fail`. Calls it already cancelled are not reported again.
        """
        wf = self._workflows.get(workflow_id)
        if not wf:
            return []
        now = self._clock()
        affected: list[Call] = []

        def why(c: Call, dep: Call) -> BaseException:
            return CallCancelledError(c.id, workflow_id, dep.id)

        for call in list(wf.values()):
            state = call.state
            if state is RUNNING:
                if call.cancel_requested:
                    continue
                call.cancel_requested = True
                affected.append(call)
            elif state is PENDING or state is READY:
                if state is PENDING:
                    self._n_pending -= 1
                else:
                    self._n_ready -= 1  # its queue entry goes stale
                call.state = CANCELLED
                call.error = CallCancelledError(call.id, workflow_id)
                call.finished_at = now
                affected.append(call)
            else:
                continue
            self._propagate(call, CANCELLED, why, now, affected)
        return affected

    # -- forgetting ------------------------------------------------------------------

    def forget(self, call_id: CallId) -> None:
        """Drop a terminal call's record; its id becomes unknown (and reusable)."""
        call = self.get(call_id)
        if not call.state.terminal:
            raise InvalidTransitionError(
                f"cannot forget call {call_id!r}: it is {call.state.value}, not terminal"
            )
        self._drop(call)

    def forget_workflow(self, workflow_id: Hashable) -> int:
        """Drop every call of a finished workflow; returns how many were dropped."""
        wf = self._workflows.get(workflow_id)
        if not wf:
            return 0
        live = [c.id for c in wf.values() if not c.state.terminal]
        if live:
            raise InvalidTransitionError(
                f"cannot forget workflow {workflow_id!r}: {len(live)} live call(s), "
                f"e.g. {live[0]!r}"
            )
        for call_id in wf:
            del self._calls[call_id]
        del self._workflows[workflow_id]
        return len(wf)

    # -- internals -------------------------------------------------------------------

    def _running(self, call_id: CallId, verb: str) -> Call:
        call = self._calls.get(call_id)
        if call is None:
            raise UnknownCallError(f"cannot {verb} unknown call {call_id!r}")
        if call.state is not RUNNING:
            raise InvalidTransitionError(
                f"cannot {verb} call {call_id!r}: it is {call.state.value}, not running"
            )
        return call

    def _drop(self, call: Call) -> None:
        del self._calls[call.id]
        wf = self._workflows[call.workflow_id]
        del wf[call.id]
        if not wf:
            del self._workflows[call.workflow_id]

    def _propagate(
        self,
        start: Call,
        state: CallState,
        make_error: Callable[[Call, Call], BaseException],
        now: float,
        out: list[Call],
    ) -> None:
        """End every pending transitive dependent of ``start`` in ``state``.

        ``start`` must already be terminal or cancel-requested; its dependents list is
        consumed (emptied if it is still running). Each call ended is appended to ``out``.
        """
        stack = [start]
        while stack:
            parent = stack.pop()
            dependents = parent.dependents or ()
            parent.dependents = None
            if self._prune and parent.state is not RUNNING:
                self._drop(parent)
            for dep in dependents:
                if dep.state is PENDING:
                    self._n_pending -= 1
                    dep.state = state
                    dep.error = make_error(dep, parent)
                    dep.finished_at = now
                    out.append(dep)
                    stack.append(dep)

    def _end_blocked(self, call: Call, dep: Call, now: float) -> None:
        """A call added with a failed/cancelled dep: it ends at once, like a dependent."""
        err = dep.error
        if dep.state is FAILED:
            call.state = FAILED
            if isinstance(err, DependencyFailedError):
                call.error = DependencyFailedError(call.id, dep.id, err.root_id, err.cause)
            else:
                call.error = DependencyFailedError(call.id, dep.id, dep.id, err)
        else:
            call.state = CANCELLED
            wf = err.workflow_id if isinstance(err, CallCancelledError) else dep.workflow_id
            call.error = CallCancelledError(call.id, wf, dep.id)
        call.finished_at = now
        if self._prune:
            self._drop(call)

    def _end_cancel_requested(self, call: Call) -> None:
        call.state = CANCELLED
        call.error = CallCancelledError(call.id, call.workflow_id)
        call.dependents = None
        if self._prune:
            self._drop(call)

    def check_integrity(self) -> None:
        """Recount states and dependency counters; `AssertionError` on any mismatch."""
        check_tracker(self)
