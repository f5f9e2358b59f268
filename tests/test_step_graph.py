"""StepGraph construction and validation, WorkflowState transitions, STE on small examples."""

from __future__ import annotations

import math

import pytest

from agentrt.graph import (
    AgentSpec,
    DuplicateAgentError,
    DuplicateEdgeError,
    GraphError,
    InvalidBoundError,
    LoopBoundError,
    NoEntryAgentError,
    NotALoopError,
    StepGraph,
    UnboundedCycleError,
    UnboundedSelfLoopError,
    UnknownAgentError,
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


# -- AgentSpec ------------------------------------------------------------------------
def test_agent_spec_normalises_and_validates():
    spec = AgentSpec("coder", prefix=[1, 2, 3], join="or", sampling={"temperature": 0.2})
    assert spec.prefix == (1, 2, 3) and spec.join == "or" and spec.max_visits is None
    assert spec.sampling["temperature"] == 0.2
    with pytest.raises(TypeError):
        spec.sampling["temperature"] = 1.0  # type: ignore[index]
    assert hash(spec) == hash(AgentSpec("coder", prefix=(1, 2, 3), join="or"))
    with pytest.raises(GraphError, match="join must be 'and' or 'or'"):
        AgentSpec("a", join="xor")  # type: ignore[arg-type]
    with pytest.raises(GraphError, match="non-empty string"):
        AgentSpec("")
    with pytest.raises(GraphError, match="token ids"):
        AgentSpec("a", prefix=[1, -2])  # type: ignore[list-item]
    with pytest.raises(InvalidBoundError, match="max_visits"):
        AgentSpec("a", max_visits=0)


# -- construction and queries -----------------------------------------------------------
def test_build_and_query():
    g = StepGraph()
    spec = g.add_agent("planner", prefix="You plan.")
    g.add_agent(AgentSpec("coder", prefix=[7, 8]))
    g.add_agent("reviewer", join="or", max_visits=3)
    g.add_edge("planner", "coder")
    g.add_edge("coder", "reviewer")
    g.add_edge("reviewer", "coder", max_iterations=2)
    assert spec is g.spec("planner") and g.spec("reviewer").max_visits == 3
    assert g.agents == ["planner", "coder", "reviewer"] and len(g) == 3 and "coder" in g
    assert g.successors("reviewer") == [] and g.predecessors("coder") == ["planner"]
    assert [(e.src, e.dst, e.max_iterations) for e in g.back_edges] == [("reviewer", "coder", 2)]
    assert g.back_edges_into("coder") == g.back_edges_from("reviewer") == g.back_edges
    assert g.forward_edges == [("planner", "coder"), ("coder", "reviewer")]
    assert g.entry_agents == ["planner"]
    assert g.topological_order() == ("planner", "coder", "reviewer")
    assert g.validate() is g
    with pytest.raises(Exception, match="Frozen"):
        g.nx_graph.add_node("x")
    with pytest.raises(UnknownAgentError, match="'tester'"):
        g.spec("tester")
    with pytest.raises(TypeError):
        g.add_agent(AgentSpec("x"), prefix="p")


def test_from_edges_and_from_dict_agree():
    a = StepGraph.from_edges([("p", "w1"), ("p", "w2"), ("w1", "m"), ("w2", "m"), ("m", "p", 1)])
    b = StepGraph.from_dict({"p": ["w1", "w2"], "w1": ["m"], "w2": ["m"], "m": {"p": 1}})
    assert a.agents == b.agents == ["p", "w1", "w2", "m"]
    assert a.forward_edges == b.forward_edges and a.back_edges == b.back_edges
    c = StepGraph.from_dict({"solo": []})
    assert c.agents == c.entry_agents == ["solo"]


def test_graph_changes_invalidate_the_cached_order():
    g = StepGraph.from_edges([("a", "b")])
    assert g.topological_order() == ("a", "b")
    g.add_agent("c")
    g.add_edge("c", "a")
    assert g.topological_order() == ("c", "a", "b") and g.entry_agents == ["c"]
    g.add_edge("b", "c")
    with pytest.raises(UnboundedCycleError):
        g.validate()


# -- validation errors --------------------------------------------------------------------
def test_unknown_agent_in_edge_names_it_and_the_known_ones():
    g = StepGraph.from_edges([("planner", "coder")])
    with pytest.raises(UnknownAgentError) as err:
        g.add_edge("coder", "tester")
    msg = str(err.value)
    assert "'tester'" in msg and "'coder' -> 'tester'" in msg
    assert "known agents: 'coder', 'planner'" in msg
    assert err.value.name == "tester" and isinstance(err.value, ValueError)
    with pytest.raises(UnknownAgentError, match="'ghost'"):
        StepGraph.from_edges([("a", "ghost")], agents=["a", "b"])


def test_duplicate_agent_and_duplicate_edge():
    g = StepGraph()
    g.add_agent("a")
    with pytest.raises(DuplicateAgentError, match="duplicate agent name 'a'"):
        g.add_agent(AgentSpec("a"))
    g.add_agent("b")
    g.add_edge("a", "b")
    with pytest.raises(DuplicateEdgeError, match="'a' -> 'b' is declared twice"):
        g.add_edge("a", "b", max_iterations=2)


def test_cycle_without_bound_names_its_agents():
    with pytest.raises(UnboundedCycleError) as err:
        StepGraph.from_edges([("start", "a"), ("a", "b"), ("b", "c"), ("c", "a")])
    cycle = err.value.cycle
    assert sorted(cycle) == ["a", "b", "c"]
    i = cycle.index("a")
    assert cycle[i:] + cycle[:i] == ["a", "b", "c"]
    path = " -> ".join(repr(n) for n in [*cycle, cycle[0]])
    assert str(err.value).startswith(f"cycle without a bound: {path}; ")
    assert f"add_edge({cycle[-1]!r}, {cycle[0]!r}, max_iterations=" in str(err.value)


def test_self_edge_needs_a_bound():
    g = StepGraph.from_dict({"refine": []})
    with pytest.raises(UnboundedSelfLoopError, match="'refine' -> 'refine' loops on itself"):
        g.add_edge("refine", "refine")
    g.add_edge("refine", "refine", max_iterations=2)
    assert g.validate().back_edges[0].max_iterations == 2


@pytest.mark.parametrize("bound", [0, -1, True, 1.5, "2"])
def test_bad_loop_bound(bound):
    g = StepGraph.from_edges([("a", "b")])
    with pytest.raises(InvalidBoundError, match="max_iterations must be a positive int"):
        g.add_edge("b", "a", max_iterations=bound)


def test_bound_on_an_edge_that_closes_no_loop():
    with pytest.raises(NotALoopError, match="'a' -> 'b' has max_iterations=2 but closes no"):
        StepGraph.from_edges([("a", "b", 2)])


def test_empty_graph_has_no_entry_agent():
    with pytest.raises(NoEntryAgentError, match="no entry agent"):
        StepGraph().validate()
    with pytest.raises(NoEntryAgentError):
        WorkflowState(StepGraph())


def test_join_on_an_agent_with_one_predecessor_is_ignored():
    g = StepGraph()
    g.add_agent("a")
    g.add_agent("b", join="or")
    g.add_edge("a", "b")
    s = WorkflowState(g)
    assert run(s, "a") == {"b"}


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
