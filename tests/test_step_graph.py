"""StepGraph: agent specs, construction and queries, validation errors."""

from __future__ import annotations

import pytest

from agentrt.graph import (
    AgentSpec,
    DuplicateAgentError,
    DuplicateEdgeError,
    GraphError,
    InvalidBoundError,
    NoEntryAgentError,
    NotALoopError,
    StepGraph,
    UnboundedCycleError,
    UnboundedSelfLoopError,
    UnknownAgentError,
    WorkflowState,
)


def run(state: WorkflowState, agent: str, take: list[str] | None = None) -> set[str]:
    state.start(agent)
    return state.finish(agent, take)


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
