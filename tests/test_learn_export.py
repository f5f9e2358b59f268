"""Learned graphs as JSON (round trip, validation) and as a declared `StepGraph`."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentrt.graph.ste import steps_to_execution
from agentrt.graph.step_graph import StepGraph
from agentrt.graph.workflow_state import WorkflowState
from agentrt.learn import (
    LearnedGraphFormatError,
    LearnedGraphs,
    LearnError,
    ToolPauses,
    TransitionLearner,
    export_learned,
    import_learned,
    learners_of,
    read_learned,
    to_step_graph,
    write_learned,
)


def chain_traffic(graphs: LearnedGraphs, agents: list[str], rounds: int, workflows: int):
    now = 0.0
    for w in range(workflows):
        for _ in range(rounds):
            for agent in agents:
                graphs.start(f"w{w}", agent, now)
                graphs.finish(f"w{w}", agent, now + 1.0)
                now += 2.5
        graphs.end(f"w{w}", now)
    return now


def taught() -> tuple[LearnedGraphs, ToolPauses]:
    graphs = LearnedGraphs()
    chain_traffic(graphs, ["a1", "a2", "a3"], rounds=3, workflows=4)
    graphs.start("other", "solo", 0.0, kind="single")
    graphs.end("other", 1.0)
    pauses = ToolPauses()
    for gap in (1.0, 2.5, 4.0):
        pauses.response("w", ["search"], 10.0)
        pauses.request("w", 10.0 + gap)
    return graphs, pauses


def test_export_import_round_trip_is_exact(tmp_path):
    graphs, pauses = taught()
    doc = export_learned(graphs, pauses)
    path = tmp_path / "learned.json"
    write_learned(path, doc)
    again, again_pauses = LearnedGraphs(), ToolPauses()
    import_learned(read_learned(path), again, now=0.0, pauses=again_pauses)
    assert export_learned(again, again_pauses) == doc
    assert json.loads(path.read_text()) == doc
    assert again_pauses.expected_pause(["search"]) == pauses.expected_pause(["search"])
    learner = graphs.learner("a1")
    assert again.learner("a1").ste_table() == learner.ste_table()
    assert again.learner("a1").probabilities() == learner.probabilities()


def test_the_document_says_what_was_learned():
    graphs, pauses = taught()
    doc = export_learned(graphs, pauses)
    assert doc["schema"] == "agentrt.learned-graphs" and doc["version"] == 1
    (kind,) = [k for k in doc["kinds"] if k["kind"] == "a1"]
    edges = {(t["src"], t["dst"]): t for t in kind["transitions"]}
    assert set(edges) == {("a1", "a2"), ("a2", "a3"), ("a3", "a1")}
    assert edges["a3", "a1"]["probability"] == pytest.approx(2 / 3)
    assert edges["a3", "a1"]["max_per_workflow"] == 2
    assert edges["a1", "a2"]["delay_s"]["mean"] == 1.5  # finish to next start
    assert kind["starts"] == {"a1": 4} and kind["ends"] == {"a3": 4}
    assert doc["tool_pauses"]["search"]["count"] == 3


def test_importing_replaces_a_kind_keeps_its_live_workflows_and_leaves_the_others():
    graphs, _ = taught()
    mine = LearnedGraphs()
    chain_traffic(mine, ["a1", "zz"], rounds=1, workflows=1)
    chain_traffic(mine, ["b1", "b2"], rounds=1, workflows=1)
    mine.start("live", "a1", 100.0)
    assert mine.workflow_ste("live") is None  # one transition out of a1: unknown
    adopted = import_learned(export_learned(graphs), mine, now=100.0)
    assert sorted(adopted) == ["a1", "single"]
    assert sorted(mine.kinds) == ["a1", "b1", "single"]
    assert mine.learner("a1").agents == ["a1", "a2", "a3"]
    assert mine.workflow_ste("live") == {"a1": 0, "a2": 1.0, "a3": 2.0}


def test_a_carried_over_workflow_at_an_agent_the_import_does_not_know_learns_on():
    graphs, _ = taught()
    mine = LearnedGraphs()
    mine.start("live", "a1", 0.0)
    mine.start("live", "zz", 1.0)  # zz: unknown to the imported learner
    import_learned(export_learned(graphs), mine, now=2.0)
    mine.start("live", "a2", 3.0)  # from zz: not counted
    mine.end("live", 4.0)
    doc = export_learned(mine)  # still a valid document
    assert import_learned(doc, LearnedGraphs(), now=5.0) == ["a1", "single"]
    assert "zz" not in mine.learner("a1").edges


def test_a_new_kind_finds_no_room_when_every_kind_is_live():
    graphs, _ = taught()
    mine = LearnedGraphs(max_kinds=1)
    mine.start("live", "x", 0.0)
    assert import_learned(export_learned(graphs), mine, now=1.0) == []
    assert mine.kinds == ["x"] and mine.kind_of("live") == "x"


def mutate(doc, path, value):
    target = doc
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return doc


@pytest.mark.parametrize(
    "path, value, message",
    [
        (("schema",), "other", "schema"),
        (("version",), 2, "version"),
        (("kinds", 0, "transitions", 0, "dst"), "ghost", "does not list"),
        (("kinds", 0, "transitions", 0, "count"), 0, "count"),
        (("kinds", 0, "transitions", 0, "delay_s", "mean"), math.nan, "mean"),
        (("kinds", 0, "starts"), {"ghost": 1}, "does not list"),
        (("kinds", 0, "extra"), 1, "extra"),
        (("tool_pauses", "search", "recent"), [1.0] * 99, "recent"),
        (("kinds",), "nope", "kinds"),
    ],
)
def test_a_bad_document_is_a_one_line_error_naming_the_problem(path, value, message):
    graphs, pauses = taught()
    doc = mutate(export_learned(graphs, pauses), path, value)
    target = LearnedGraphs()
    with pytest.raises(LearnedGraphFormatError, match=message) as info:
        import_learned(doc, target, now=0.0)
    assert "\n" not in str(info.value)
    assert target.kinds == []  # nothing adopted from a bad document


def test_unreadable_files_are_one_line_errors_naming_the_file(tmp_path):
    missing = tmp_path / "missing.json"
    with pytest.raises(LearnedGraphFormatError, match="missing.json"):
        read_learned(missing)
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(LearnedGraphFormatError, match="bad.json") as info:
        read_learned(bad)
    assert "\n" not in str(info.value)
    wrong = tmp_path / "wrong.json"
    wrong.write_text('{"kinds": []}')
    with pytest.raises(LearnedGraphFormatError, match="wrong.json.*block_size"):
        read_learned(wrong)


def test_a_learned_loop_becomes_a_step_graph_with_the_declared_ste():
    """The KVFlow single shape learned from traffic, converted back, runs like the
    declared graph: same edges, loop bound and steps-to-execution at every step."""
    graphs = LearnedGraphs()
    chain_traffic(graphs, ["a1", "a2", "a3", "a4"], rounds=3, workflows=3)
    graph = to_step_graph(learners_of(export_learned(graphs))[0])
    assert graph.forward_edges == [("a1", "a2"), ("a2", "a3"), ("a3", "a4")]
    assert [(e.src, e.dst, e.max_iterations) for e in graph.back_edges] == [("a4", "a1", 2)]
    assert graph.entry_agents == ["a1"]
    declared = StepGraph.from_dict({"a1": ["a2"], "a2": ["a3"], "a3": ["a4"], "a4": {"a1": 2}})
    learned_state, declared_state = WorkflowState(graph), WorkflowState(declared)
    seen = []
    while not declared_state.finished:
        assert learned_state.ready == declared_state.ready
        (agent,) = declared_state.ready
        learned_state.start(agent)
        declared_state.start(agent)
        assert steps_to_execution(graph, learned_state) == steps_to_execution(
            declared, declared_state
        )
        seen.append(agent)
        take = ["a1"] if agent == "a4" and declared_state.loops_left("a4", "a1") else None
        learned_state.finish(agent, take)
        declared_state.finish(agent, take)
    assert learned_state.finished
    assert seen == ["a1", "a2", "a3", "a4"] * 3


def test_rare_transitions_are_left_out_and_branches_are_or_joins():
    graphs = LearnedGraphs()
    for i in range(10):
        route = ["plan", "code" if i % 2 else "search", "review"]
        if i == 0:
            route.insert(1, "rare")
        chain_traffic_one(graphs, f"w{i}", route)
    graph = to_step_graph(graphs.learner("plan"), min_probability=0.2)
    assert "rare" not in graph
    assert sorted(graph.predecessors("review")) == ["code", "search"]
    assert graph.spec("review").join == "or"


def chain_traffic_one(graphs: LearnedGraphs, wid: str, route: list[str]) -> None:
    for t, agent in enumerate(route):
        graphs.start(wid, agent, float(t))
        graphs.finish(wid, agent, t + 0.5)
    graphs.end(wid, float(len(route)))


def test_a_kind_without_a_start_has_no_step_graph_and_bad_thresholds_raise():
    learner = TransitionLearner("k")
    with pytest.raises(LearnError, match="no start agent"):
        to_step_graph(learner)
    learner.start("w", "a", 0.0)
    with pytest.raises(LearnError, match="min_probability"):
        to_step_graph(learner, min_probability=0.0)


@settings(max_examples=100, deadline=None)
@given(
    routes=st.lists(st.lists(st.sampled_from("abcde"), min_size=1, max_size=8), min_size=1),
    threshold=st.sampled_from([0.01, 0.1, 0.3]),
)
def test_any_learned_traffic_converts_to_a_valid_step_graph(routes, threshold):
    graphs = LearnedGraphs(kind_ttl_s=1e9, idle_ttl_s=1e9)
    for i, route in enumerate(routes):
        chain_traffic_one(graphs, f"w{i}", route)
    for kind in graphs.kinds:
        learner = graphs.learner(kind)
        graph = to_step_graph(learner, min_probability=threshold)  # validates
        assert set(graph.entry_agents) <= set(learner.starts)
        probs = learner.probabilities()
        for src, dst in graph.forward_edges + [(e.src, e.dst) for e in graph.back_edges]:
            assert probs[src][dst] >= threshold
        WorkflowState(graph)
