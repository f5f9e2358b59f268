"""Dependency tracker: out-of-order release, priorities, errors."""

from __future__ import annotations

import pytest

from agentrt.scheduler import (
    CallState,
    DependencyTracker,
    DuplicateCallError,
    InvalidTransitionError,
    KeyedReadyQueue,
    UnknownCallError,
    make_priority,
    priority_names,
    register_priority,
)
from agentrt.scheduler import priority as priority_module

PENDING, READY, RUNNING, DONE = (
    CallState.PENDING,
    CallState.READY,
    CallState.RUNNING,
    CallState.DONE,
)


class CheckedTracker(DependencyTracker):
    """A tracker that runs check_integrity() after every operation, failing or not."""


def _checked(name: str):
    base = getattr(DependencyTracker, name)

    def method(self, *args, **kwargs):
        try:
            return base(self, *args, **kwargs)
        finally:
            self.check_integrity()

    return method


for _name in ("add", "pop_ready", "complete"):
    setattr(CheckedTracker, _name, _checked(_name))


def ids(calls):
    return [c.id for c in calls]


def run(t: DependencyTracker, *call_ids) -> None:
    """Pop everything ready and require exactly ``call_ids`` (any order)."""
    assert sorted(ids(t.pop_ready()), key=str) == sorted(call_ids, key=str)


def test_released_the_moment_its_own_deps_are_done():
    t = CheckedTracker("earliest_step")
    t.add("slow", step=0)  # long call of workflow A, step 0
    t.add("a1", ["slow"], step=1)
    t.add("b0", step=0)  # workflow B
    t.add("b1", ["b0"], step=1)
    t.add("b2", ["b1"], step=2)
    run(t, "slow", "b0")
    t.complete("b0")
    # No global step barrier: b1 goes while step 0 ("slow") still runs.
    assert t.get("b1").state is READY and t.get("a1").state is PENDING
    run(t, "b1")
    t.complete("b1")
    run(t, "b2")
    t.complete("b2")
    assert (t.pending_count, t.ready_count, t.running_count) == (1, 0, 1)
    t.complete("slow")
    run(t, "a1")


def test_later_step_released_before_an_earlier_step_still_waiting():
    t = CheckedTracker("earliest_step")
    t.add("x")
    t.add("y")
    t.add("late", ["x"], step=1)  # step 1, but its dep ends first
    t.add("early", ["y"], step=0)
    run(t, "x", "y")
    t.complete("x")
    assert ids(t.pop_ready()) == ["late"]
    assert t.get("early").state is PENDING


def test_calls_added_while_others_run_and_done_calls_are_dropped():
    t = CheckedTracker()
    t.add(1)
    run(t, 1)
    two = t.add(2, [1])  # dep is running
    assert two.state is PENDING
    t.complete(1)
    assert two.state is READY and 1 not in t and t.live_count == 1
    with pytest.raises(UnknownCallError, match="dropped once done"):
        t.add(3, [1])
    assert ids(t.pop_ready()) == [2]


def test_waits_for_all_deps_and_counts_a_repeated_dep_once():
    t = CheckedTracker()
    for i in (1, 2):
        t.add(i)
    c = t.add(3, [1, 2, 1, 2])
    assert c.deps == (1, 2) and c.waiting == 2
    run(t, 1, 2)
    t.complete(2)
    assert c.state is PENDING
    t.complete(1)
    assert c.state is READY


def test_pop_ready_max_n_and_counts():
    t = CheckedTracker()
    for i in range(5):
        t.add(i)
    assert ids(t.pop_ready(2)) == [0, 1]
    assert ids(t.pop_ready(0)) == []
    assert (t.ready_count, t.running_count, t.live_count) == (3, 2, 5)
    assert ids(t.pop_ready()) == [2, 3, 4]
    assert t.pop_ready() == []
    with pytest.raises(ValueError, match="max_n"):
        t.pop_ready(-1)


def test_a_chain_of_workflows_drains_to_nothing():
    t = CheckedTracker()
    for i in range(50):
        t.add(i, [i - 1] if i % 10 else ())
    done = 0
    while t.live_count:
        for c in t.pop_ready():
            t.complete(c.id)
            assert c.state is DONE
            done += 1
    assert done == 50 and not t._calls


def test_errors_leave_the_tracker_unchanged():
    t = CheckedTracker()
    t.add(1)
    with pytest.raises(UnknownCallError, match="unknown call 99"):
        t.add(2, [1, 99])
    with pytest.raises(UnknownCallError, match="itself"):
        t.add(3, [3])
    with pytest.raises(DuplicateCallError, match="already added"):
        t.add(1)
    assert t.live_count == 1 and 2 not in t and t.get(1).dependents is None
    with pytest.raises(UnknownCallError, match="unknown call 7"):
        t.complete(7)
    with pytest.raises(UnknownCallError):
        t.get(7)
    with pytest.raises(InvalidTransitionError, match="ready, not running"):
        t.complete(1)
    run(t, 1)
    t.complete(1)
    with pytest.raises(UnknownCallError, match="unknown call 1"):
        t.complete(1)


def _ready_order(priority, specs):
    t = CheckedTracker(priority)
    t.add("gate")
    for cid, step, remaining in specs:
        t.add(cid, ["gate"], step=step, remaining=remaining)
    run(t, "gate")
    t.complete("gate")
    return ids(t.pop_ready())


SPECS = [("a", 3, 1), ("b", 1, None), ("c", 2, 1), ("d", 1, 5), ("e", 0, 1)]


def test_priorities_order_ready_calls():
    assert _ready_order("fifo", SPECS) == ["a", "b", "c", "d", "e"]
    assert _ready_order("earliest_step", SPECS) == ["e", "b", "d", "c", "a"]
    assert _ready_order("fewest_remaining", SPECS) == ["e", "c", "a", "d", "b"]


def test_priority_registry(monkeypatch):
    monkeypatch.setattr(priority_module, "_REGISTRY", dict(priority_module._REGISTRY))
    assert {"fifo", "earliest_step", "fewest_remaining"} <= set(priority_names())
    with pytest.raises(ValueError, match="unknown priority 'nope'.*earliest_step.*fifo"):
        DependencyTracker("nope")

    @register_priority("test_latest_step")
    class LatestStep(KeyedReadyQueue):
        @staticmethod
        def key(call):
            return -call.step

    assert make_priority("test_latest_step").name == "test_latest_step"
    assert _ready_order("test_latest_step", SPECS) == ["a", "c", "b", "d", "e"]
    with pytest.raises(ValueError, match="already registered"):
        register_priority("fifo")(LatestStep)


def test_check_integrity_detects_corruption():
    t = DependencyTracker()
    t.add(1)
    t.add(2, [1])
    t.check_integrity()
    t.get(2).waiting = 0
    with pytest.raises(AssertionError, match="waits on 0 deps"):
        t.check_integrity()
    t.get(2).waiting = 1
    t._n_ready += 1
    with pytest.raises(AssertionError, match="ready calls held"):
        t.check_integrity()
    t._n_ready -= 1
    t.get(1).dependents = []
    with pytest.raises(AssertionError, match="missing from the dependents"):
        t.check_integrity()
