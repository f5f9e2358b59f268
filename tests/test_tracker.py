"""Dependency tracker: out-of-order release, failure/cancel paths, priorities, errors."""

from __future__ import annotations

import pytest

from agentrt.scheduler import (
    CallCancelledError,
    CallState,
    DependencyFailedError,
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

PENDING, READY, RUNNING = CallState.PENDING, CallState.READY, CallState.RUNNING
DONE, FAILED, CANCELLED = CallState.DONE, CallState.FAILED, CallState.CANCELLED


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


for _name in (
    "add",
    "pop_ready",
    "complete",
    "fail",
    "cancel_workflow",
    "forget",
    "forget_workflow",
):
    setattr(CheckedTracker, _name, _checked(_name))


def ids(calls):
    return [c.id for c in calls]


def run(t: DependencyTracker, *call_ids) -> None:
    """Pop everything ready and require exactly ``call_ids`` (any order)."""
    assert sorted(ids(t.pop_ready()), key=str) == sorted(call_ids, key=str)


def test_released_the_moment_its_own_deps_are_done():
    t = CheckedTracker("earliest_step")
    t.add("slow", workflow_id="A", step=0)  # long call of workflow A, step 0
    t.add("a1", ["slow"], workflow_id="A", step=1)
    t.add("b0", workflow_id="B", step=0)
    t.add("b1", ["b0"], workflow_id="B", step=1)
    t.add("b2", ["b1"], workflow_id="B", step=2)
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


def test_calls_added_while_others_run():
    t = CheckedTracker()
    t.add(1)
    run(t, 1)
    t.add(2, [1])  # dep is running
    assert t.get(2).state is PENDING
    t.complete(1)
    t.add(3, [1])  # dep already done: satisfied at once
    assert t.get(3).state is READY
    assert ids(t.pop_ready()) == [2, 3]


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


def test_fail_fails_transitive_dependents_with_the_cause_chained():
    t = CheckedTracker()
    t.add("a", workflow_id=1)
    t.add("b", ["a"], workflow_id=1)
    t.add("c", ["b"], workflow_id=1)
    t.add("other", workflow_id=1)  # same workflow, independent
    t.add("x", ["a"], workflow_id=2)  # another workflow depending on a
    t.add("y", workflow_id=2)
    t.add("z", ["y"], workflow_id=2)
    run(t, "a", "other", "y")
    boom = ValueError("boom")
    failed = t.fail("a", boom)
    assert ids(failed)[0] == "a" and sorted(ids(failed)) == ["a", "b", "c", "x"]
    assert t.get("a").error is boom
    for cid, dep in (("b", "a"), ("c", "b"), ("x", "a")):
        err = t.get(cid).error
        assert t.get(cid).state is FAILED and isinstance(err, DependencyFailedError)
        assert err.__cause__ is boom and err.cause is boom
        assert (err.call_id, err.dep_id, err.root_id) == (cid, dep, "a")
    assert t.get("other").state is RUNNING and t.get("z").state is PENDING
    t.complete("y")
    run(t, "z")


def test_add_with_a_failed_or_cancelled_dep_ends_at_once():
    t = CheckedTracker()
    t.add("a")
    t.add("b", ["a"])
    run(t, "a")
    boom = KeyError("k")
    t.fail("a", boom)
    late = t.add("late", ["b"])  # b failed because of a
    assert late.state is FAILED and late.error.cause is boom and late.error.root_id == "a"
    assert late.error.dep_id == "b" and late.error.__cause__ is boom
    t.add("w", workflow_id="W")
    t.cancel_workflow("W")
    c = t.add("after", ["w"])
    assert c.state is CANCELLED and isinstance(c.error, CallCancelledError)
    assert (c.error.workflow_id, c.error.dep_id) == ("W", "w")
    assert t.live_count == 0


def test_cancel_workflow():
    t = CheckedTracker()
    t.add("r", workflow_id="W")  # will be running
    t.add("q", workflow_id="W")  # will be ready
    t.add("p", ["r"], workflow_id="W")  # pending
    t.add("dep_of_p", ["p"], workflow_id="V")  # other workflow, depends on W
    t.add("v", workflow_id="V")
    assert ids(t.pop_ready(1)) == ["r"]
    affected = t.cancel_workflow("W")
    assert ids(affected) == ["r", "p", "dep_of_p", "q"]
    assert t.get("r").state is RUNNING and t.get("r").cancel_requested
    for cid in ("p", "q", "dep_of_p"):
        assert t.get(cid).state is CANCELLED
        assert isinstance(t.get(cid).error, CallCancelledError)
    assert t.get("dep_of_p").error.dep_id == "p"
    assert t.cancel_workflow("W") == [] and t.cancel_workflow("nope") == []
    # A call needing the aborted running call can never run either.
    assert t.add("needs_r", ["r"], workflow_id="V").state is CANCELLED
    # The cancelled ready call "q" is skipped; V's call still comes out.
    assert ids(t.pop_ready()) == ["v"]
    t.complete("r")  # the runtime reports the aborted call: it ends cancelled
    assert t.get("r").state is CANCELLED and t.get("r").error.workflow_id == "W"
    assert t.get("v").state is RUNNING and t.live_count == 1


def test_fail_of_a_cancel_requested_call_ends_it_cancelled():
    t = CheckedTracker()
    t.add("r", workflow_id="W")
    run(t, "r")
    t.cancel_workflow("W")
    assert t.fail("r", RuntimeError("aborted")) == []
    assert t.get("r").state is CANCELLED


def test_errors_leave_the_tracker_unchanged():
    t = CheckedTracker()
    t.add(1)
    with pytest.raises(UnknownCallError, match="unknown call 99"):
        t.add(2, [1, 99])
    with pytest.raises(UnknownCallError, match="itself"):
        t.add(3, [3])
    with pytest.raises(DuplicateCallError, match="already added"):
        t.add(1)
    assert len(t) == 1 and 2 not in t and t.get(1).dependents is None
    with pytest.raises(UnknownCallError, match="unknown call 7"):
        t.complete(7)
    with pytest.raises(UnknownCallError):
        t.get(7)
    with pytest.raises(InvalidTransitionError, match="ready, not running"):
        t.complete(1)
    with pytest.raises(InvalidTransitionError, match="not running"):
        t.fail(1, ValueError())
    run(t, 1)
    t.complete(1)
    with pytest.raises(InvalidTransitionError, match="done, not running"):
        t.complete(1)


def test_forget_and_forget_workflow():
    t = CheckedTracker()
    t.add("a", workflow_id="W")
    t.add("b", ["a"], workflow_id="W")
    with pytest.raises(InvalidTransitionError, match="not terminal"):
        t.forget("a")
    with pytest.raises(InvalidTransitionError, match="live call"):
        t.forget_workflow("W")
    run(t, "a")
    t.complete("a")
    t.forget("a")  # b already counted it as done
    assert "a" not in t and t.get("b").state is READY
    with pytest.raises(UnknownCallError, match="forgotten"):
        t.add("c", ["a"])
    run(t, "b")
    t.complete("b")
    assert t.forget_workflow("W") == 1 and len(t) == 0
    assert t.forget_workflow("W") == 0
    t.add("a")  # a forgotten id is free again


def test_prune_keeps_only_live_calls():
    t = CheckedTracker(prune=True)
    for i in range(50):
        t.add(i, [i - 1] if i % 10 else (), workflow_id=i // 10)
    t.add("failing", workflow_id="F")
    t.add("doomed", ["failing"], workflow_id="F")
    done = 0
    while t.live_count:
        for c in t.pop_ready():
            if c.id == "failing":
                assert ids(t.fail(c.id, ValueError())) == ["failing", "doomed"]
            else:
                t.complete(c.id)
                done += 1
        assert len(t) == t.live_count
    assert done == 50 and len(t) == 0 and not t._workflows


def test_timestamps_follow_the_clock():
    now = [0.0]
    t = CheckedTracker(clock=lambda: now[0])
    t.add("a")
    b = t.add("b", ["a"])
    now[0] = 1.0
    t.pop_ready()
    now[0] = 2.0
    t.complete("a")
    now[0] = 3.0
    t.pop_ready()
    now[0] = 4.0
    t.complete("b")
    assert (b.added_at, b.ready_at, b.started_at, b.finished_at) == (0.0, 2.0, 3.0, 4.0)


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
