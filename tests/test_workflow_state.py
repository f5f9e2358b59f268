"""WorkflowState transitions and steps-to-execution: AND/OR joins, bounded loops, fan-out /
fan-in, misuse."""

from __future__ import annotations

import math

import pytest

from agentrt.graph import (
    LoopBoundError,
    StepGraph,
    WorkflowState,
    WorkflowStateError,
    due_next,
    steps_to_execution,
)

INF = math.inf


def run(state: WorkflowState, agent: str, take: list[str] | None = None) -> set[str]:
    state.start(agent)
    return state.finish(agent, take)


def pipeline(loops: int = 2) -> StepGraph:
    return StepGraph.from_dict(
        {"planner": ["coder"], "coder": ["reviewer"], "reviewer": {"coder": loops}}
    )


# -- AND vs OR joins ----------------------------------------------------------------------
@pytest.mark.parametrize(("join", "after_a"), [("and", 2), ("or", 0)])
def test_and_waits_for_the_slowest_or_for_the_fastest(join, after_a):
    g = StepGraph()
    for name in ("a", "x", "b"):
        g.add_agent(name)
    g.add_agent("c", join=join)
    for src, dst in [("x", "b"), ("a", "c"), ("b", "c")]:
        g.add_edge(src, dst)
    s = WorkflowState(g)
    start = steps_to_execution(g, s)
    assert start == {"a": 0, "x": 0, "b": 1, "c": 2 if join == "and" else 1}
    run(s, "a")
    assert steps_to_execution(g, s)["c"] == after_a
    assert s.inbox("c") == ({"a"} if join == "and" else set())


def test_and_join_ignores_predecessors_it_already_heard_from():
    # Naive "STE(c) >= STE(p) + 1 for every predecessor p" is false: a has run and will
    # never run again (inf), yet c is one step away because it only waits for b.
    g = StepGraph.from_edges([("a", "c"), ("b", "c")])
    s = WorkflowState(g)
    run(s, "a")
    s.start("b")
    ste = steps_to_execution(g, s)
    assert ste == {"a": INF, "b": 0, "c": 1}


# -- bounded loop: planner -> coder -> reviewer, reviewer -> coder (max 2) --------------------
def test_pipeline_loop_ste_through_every_iteration():
    g = pipeline(loops=2)
    s = WorkflowState(g)
    assert steps_to_execution(g, s) == {"planner": 0, "coder": 1, "reviewer": 2}
    assert run(s, "planner") == {"coder"}
    assert steps_to_execution(g, s) == {"planner": INF, "coder": 0, "reviewer": 1}
    for taken in range(2):
        run(s, "coder")
        s.start("reviewer")
        # while the reviewer runs, the coder is one step away as long as a loop is left
        assert steps_to_execution(g, s) == {"planner": INF, "coder": 1, "reviewer": 0}
        assert due_next(g, s) == {"coder"}
        assert s.finish("reviewer", take=["coder"]) == {"coder"}
        assert s.loops_taken("reviewer", "coder") == taken + 1
    run(s, "coder")
    s.start("reviewer")
    assert steps_to_execution(g, s) == {"planner": INF, "coder": INF, "reviewer": 0}
    assert not s.can_take("reviewer", "coder")
    with pytest.raises(LoopBoundError, match="max_iterations=2"):
        s.finish("reviewer", take=["coder"])
    assert s.running == {"reviewer"}  # a refused transition leaves the state alone
    assert s.finish("reviewer") == set()
    assert s.finished and s.visits("coder") == 3
    assert steps_to_execution(g, s) == dict.fromkeys(["planner", "coder", "reviewer"], INF)


def test_not_taking_the_loop_makes_the_coder_unreachable():
    # Naive "finishing an agent never increases another agent's STE" is false: STE is
    # optimistic about loops, and the program may decline one.
    g = pipeline()
    s = WorkflowState(g)
    run(s, "planner")
    run(s, "coder")
    s.start("reviewer")
    assert steps_to_execution(g, s)["coder"] == 1
    s.finish("reviewer")
    assert steps_to_execution(g, s)["coder"] == INF


def test_nested_loops_count_through_the_outer_iteration():
    g = StepGraph.from_dict(
        {
            "planner": ["coder"],
            "coder": ["tester"],
            "tester": {"reviewer": None, "coder": 2},
            "reviewer": {"planner": 1},
        }
    )
    s = WorkflowState(g)
    run(s, "planner")
    for _ in range(2):
        run(s, "coder")
        s.start("tester")
        assert steps_to_execution(g, s) == {"planner": 2, "coder": 1, "tester": 0, "reviewer": 1}
        s.finish("tester", take=["coder"])
    run(s, "coder")
    s.start("tester")
    # inner loop used up: the coder comes back only through reviewer -> planner -> coder
    assert steps_to_execution(g, s) == {"planner": 2, "coder": 3, "tester": 0, "reviewer": 1}
    s.finish("tester")
    s.start("reviewer")
    assert steps_to_execution(g, s) == {"planner": 1, "coder": 2, "tester": 3, "reviewer": 0}
    s.finish("reviewer", take=["planner"])
    for agent in ("planner", "coder", "tester"):
        run(s, agent)
    s.start("reviewer")
    assert steps_to_execution(g, s) == dict(planner=INF, coder=INF, tester=INF, reviewer=0)


def test_bounded_self_loop_and_max_visits():
    g = StepGraph()
    g.add_agent("draft")
    g.add_agent("refine", max_visits=2)
    g.add_edge("draft", "refine")
    g.add_edge("refine", "refine", max_iterations=5)
    s = WorkflowState(g)
    run(s, "draft")
    s.start("refine")
    assert steps_to_execution(g, s)["refine"] == 0
    assert s.finish("refine", take=["refine"]) == {"refine"}
    s.start("refine")
    assert s.exhausted("refine") and s.loops_left("refine", "refine") == 4
    with pytest.raises(LoopBoundError, match="max_visits"):
        s.finish("refine", take=["refine"])
    s.finish("refine", take=[])
    assert steps_to_execution(g, s)["refine"] == INF


# -- fan-out / fan-in ------------------------------------------------------------------------
def fan(join: str) -> StepGraph:
    g = StepGraph()
    for name in ("planner", "w1", "w2", "w3"):
        g.add_agent(name)
    g.add_agent("merger", join=join)  # type: ignore[arg-type]
    g.add_agent("writer")
    for w in ("w1", "w2", "w3"):
        g.add_edge("planner", w)
        g.add_edge(w, "merger")
    g.add_edge("merger", "writer")
    return g


def test_fan_out_fan_in_and_join():
    g = fan("and")
    s = WorkflowState(g)
    assert steps_to_execution(g, s) == dict(planner=0, w1=1, w2=1, w3=1, merger=2, writer=3)
    assert run(s, "planner") == {"w1", "w2", "w3"}
    run(s, "w1")
    run(s, "w2")
    assert steps_to_execution(g, s) == dict(planner=INF, w1=INF, w2=INF, w3=0, merger=1, writer=2)
    assert due_next(g, s, k=0) == {"w3"} and due_next(g, s, k=2) == {"w3", "merger", "writer"}
    s.start("w3")
    assert due_next(g, s, k=1) == {"merger"}
    assert s.finish("w3") == {"merger"}


def test_fan_out_fan_in_or_join_runs_per_late_signal_unless_declined():
    g = fan("or")
    s = WorkflowState(g)
    assert steps_to_execution(g, s)["merger"] == 2
    run(s, "planner")
    assert run(s, "w1") == {"merger"}
    s.start("merger")
    s.start("w2")
    assert steps_to_execution(g, s)["merger"] == 0
    s.finish("w2")  # reaches the running merger: one more run once it finishes
    assert s.inbox("merger") == {"w2"}
    assert s.finish("merger") == {"writer", "merger"}
    run(s, "merger")
    s.start("w3")
    assert steps_to_execution(g, s)["merger"] == 1
    s.finish("w3", take=())  # "first one wins": the late branch declines its edge
    assert steps_to_execution(g, s)["merger"] == INF


def test_signals_reaching_a_ready_agent_merge_into_its_pending_run():
    g = StepGraph()
    g.add_agent("a")
    g.add_agent("b")
    g.add_agent("c", join="or")
    g.add_edge("a", "c")
    g.add_edge("b", "c")
    s = WorkflowState(g)
    assert run(s, "a") == {"c"}
    assert run(s, "b") == set()  # c is still ready: b's signal joins that run
    assert s.inbox("c") == set()
    run(s, "c")
    assert steps_to_execution(g, s) == {"a": INF, "b": INF, "c": INF} and s.finished


def test_an_exhausted_agent_keeps_signals_but_never_runs_again():
    g = StepGraph()
    g.add_agent("a")
    g.add_agent("b")
    g.add_agent("c", join="or", max_visits=1)
    g.add_edge("a", "c")
    g.add_edge("b", "c")
    s = WorkflowState(g)
    run(s, "a")
    run(s, "c")
    s.start("b")
    assert steps_to_execution(g, s)["c"] == INF  # b is running, but c is used up
    assert s.finish("b") == set()
    assert s.inbox("c") == {"b"} and s.activations("c") == 1


# -- WorkflowState misuse --------------------------------------------------------------------
def test_state_rejects_bad_transitions_and_stays_unchanged():
    g = pipeline()
    s = WorkflowState(g)
    with pytest.raises(WorkflowStateError, match="cannot start 'coder': it is not ready"):
        s.start("coder")
    with pytest.raises(WorkflowStateError, match="cannot finish 'planner': it is not running"):
        s.finish("planner")
    s.start("planner")
    with pytest.raises(WorkflowStateError, match="'planner' has no edge to 'reviewer'"):
        s.finish("planner", take=["reviewer"])
    assert s.running == {"planner"} and s.visits("planner") == 0


def test_loop_back_into_a_busy_agent_is_refused():
    g = StepGraph()
    for name in ("a", "b", "c"):
        g.add_agent(name)
    g.add_agent("d", join="or")
    for src, dst in [("a", "b"), ("a", "c"), ("b", "d"), ("c", "d")]:
        g.add_edge(src, dst)
    g.add_edge("d", "c", max_iterations=1)
    s = WorkflowState(g)
    run(s, "a")
    s.start("c")
    run(s, "b")
    s.start("d")
    assert s.can_take("d", "c") is False
    with pytest.raises(WorkflowStateError, match="'c' is still ready or running"):
        s.finish("d", take=["c"])
    assert s.running == {"c", "d"} and s.loops_taken("d", "c") == 0


def test_ste_needs_the_state_of_the_same_graph():
    with pytest.raises(ValueError, match="different StepGraph"):
        steps_to_execution(pipeline(), WorkflowState(pipeline()))
    with pytest.raises(ValueError, match="k must be >= 0"):
        g = pipeline()
        due_next(g, WorkflowState(g), k=-1)
