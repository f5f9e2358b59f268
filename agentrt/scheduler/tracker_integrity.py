"""`DependencyTracker.check_integrity`: recount everything the tracker keeps incrementally.

Slow (O(calls + edges)) and meant for tests, which call it after every operation.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

from agentrt.scheduler.call import Call, CallState

if TYPE_CHECKING:
    from agentrt.scheduler.tracker import DependencyTracker

PENDING, READY, RUNNING = CallState.PENDING, CallState.READY, CallState.RUNNING
DONE, FAILED, CANCELLED = CallState.DONE, CallState.FAILED, CallState.CANCELLED


def _fail(msg: str) -> None:
    raise AssertionError(f"tracker integrity: {msg}")


def check_tracker(t: DependencyTracker) -> None:
    """Raise `AssertionError` (with a message) if ``t``'s bookkeeping is inconsistent."""
    calls = t._calls
    states = Counter(c.state for c in calls.values())
    for state, counter in ((PENDING, t._n_pending), (READY, t._n_ready), (RUNNING, t._n_running)):
        if states[state] != counter:
            _fail(f"{states[state]} {state.value} calls held but counter says {counter}")

    indexed = 0
    for wf_id, wf in t._workflows.items():
        if not wf:
            _fail(f"empty workflow entry {wf_id!r}")
        for call_id, call in wf.items():
            indexed += 1
            if calls.get(call_id) is not call or call.workflow_id != wf_id:
                _fail(f"workflow index entry {wf_id!r}/{call_id!r} does not match the calls")
    if indexed != len(calls):
        _fail(f"workflow index holds {indexed} calls, tracker holds {len(calls)}")

    for call_id, call in calls.items():
        if call.id != call_id:
            _fail(f"call stored under {call_id!r} has id {call.id!r}")
        _check_call(t, call)

    queued = Counter(id(c) for c in t._queue if c.state is READY)
    n_queued = sum(queued.values())
    if n_queued != t._n_ready or any(n > 1 for n in queued.values()):
        _fail(f"ready queue holds {n_queued} ready entries for {t._n_ready} ready calls")
    for c in t._queue:
        if c.state is READY and calls.get(c.id) is not c:
            _fail(f"queued ready call {c.id!r} is not held")


def _check_call(t: DependencyTracker, call: Call) -> None:
    cid, state = call.id, call.state
    if state.terminal:
        if call.dependents is not None:
            _fail(f"terminal call {cid!r} still holds a dependents list")
        if (state is DONE) != (call.error is None):
            _fail(f"{state.value} call {cid!r} has error {call.error!r}")
        if call.finished_at is None:
            _fail(f"{state.value} call {cid!r} has no finished_at")
        return
    if call.error is not None:
        _fail(f"live call {cid!r} has error {call.error!r}")
    if call.cancel_requested and (state is not RUNNING or call.dependents):
        _fail(f"cancel-requested call {cid!r} is {state.value} with dependents")
    # A dep that is no longer held was done (a failed/cancelled one would have ended us).
    not_done = []
    for dep_id in call.deps:
        dep = t._calls.get(dep_id)
        if dep is None or dep.state is DONE:
            continue
        if dep.state.terminal or dep.cancel_requested:
            _fail(f"live call {cid!r} depends on {dep.state.value} call {dep_id!r}")
        if not any(d is call for d in dep.dependents or ()):
            _fail(f"call {cid!r} missing from the dependents of its dep {dep_id!r}")
        not_done.append(dep_id)
    if call.waiting != len(not_done):
        _fail(f"call {cid!r} waits on {call.waiting} deps but {len(not_done)} are not done")
    if (state is PENDING) != bool(not_done):
        _fail(f"{state.value} call {cid!r} has {len(not_done)} deps not done")
