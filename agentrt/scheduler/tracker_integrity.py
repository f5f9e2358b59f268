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


def _fail(msg: str) -> None:
    raise AssertionError(f"tracker integrity: {msg}")


def check_tracker(t: DependencyTracker) -> None:
    """Raise `AssertionError` (with a message) if ``t``'s bookkeeping is inconsistent."""
    calls = t._calls
    states = Counter(c.state for c in calls.values())
    for state, counter in ((PENDING, t._n_pending), (READY, t._n_ready), (RUNNING, t._n_running)):
        if states[state] != counter:
            _fail(f"{states[state]} {state.value} calls held but counter says {counter}")
    if t._n_pending + t._n_ready + t._n_running != len(calls):
        _fail(f"a held call is not live: {dict(states)}")
    for call_id, call in calls.items():
        if call.id != call_id:
            _fail(f"call stored under {call_id!r} has id {call.id!r}")
        _check_call(t, call)
    queued = Counter(id(c) for c in t._queue)
    if sum(queued.values()) != t._n_ready or any(n > 1 for n in queued.values()):
        _fail(f"ready queue holds {sum(queued.values())} entries for {t._n_ready} ready calls")
    for c in t._queue:
        if c.state is not READY or calls.get(c.id) is not c:
            _fail(f"queued call {c.id!r} is {c.state.value} or not held")


def _check_call(t: DependencyTracker, call: Call) -> None:
    cid = call.id
    not_done = []
    for dep_id in call.deps:
        dep = t._calls.get(dep_id)
        if dep is None:  # dropped: it was done
            continue
        if not any(d is call for d in dep.dependents or ()):
            _fail(f"call {cid!r} missing from the dependents of its dep {dep_id!r}")
        not_done.append(dep_id)
    if call.waiting != len(not_done):
        _fail(f"call {cid!r} waits on {call.waiting} deps but {len(not_done)} are not done")
    if (call.state is PENDING) != bool(not_done):
        _fail(f"{call.state.value} call {cid!r} has {len(not_done)} deps not done")
