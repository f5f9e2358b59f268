"""`LearnedGraphs`: kinds, merged STE over live workflows, idle expiry and bounds."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentrt.learn import LearnedGraphs, LearnerConfig, LearnError

CHAIN = ["a", "b", "c", "d"]


def teach(graphs: LearnedGraphs, workflows: int, t0: float = 0.0, kind: str | None = None):
    """`workflows` runs of the chain a -> b -> c -> d, one after another, each ended."""
    now = t0
    for i in range(workflows):
        wid = f"teach-{t0}-{i}"
        for agent in CHAIN:
            graphs.start(wid, agent, now, kind=kind)
            graphs.finish(wid, agent, now + 1)
            now += 2
        graphs.end(wid, now)
    return now


def test_agent_ste_is_the_minimum_over_live_workflows():
    graphs = LearnedGraphs()
    now = teach(graphs, 3)
    graphs.start("x", "a", now)  # x runs a: b 1, c 2, d 3
    graphs.start("y", "a", now)
    graphs.finish("y", "a", now + 1)
    graphs.start("y", "b", now + 1)
    graphs.finish("y", "b", now + 1)
    graphs.start("y", "c", now + 2)  # y runs c: d 1
    assert graphs.workflow_ste("x") == {"a": 0, "b": 1.0, "c": 2.0, "d": 3.0}
    assert graphs.workflow_ste("y") == {"a": math.inf, "b": math.inf, "c": 0, "d": 1.0}
    assert graphs.agent_ste(now + 3) == {"a": 0, "b": 1.0, "c": 0, "d": 1.0}


def test_workflows_in_an_unknown_position_are_left_out():
    graphs = LearnedGraphs()
    now = teach(graphs, 3)
    graphs.start("new-kind", "z", now)  # a kind never seen: unknown
    assert graphs.workflow_ste("new-kind") is None
    assert graphs.agent_ste(now) == {}  # the teaching workflows all ended
    graphs.start("x", "c", now)  # a workflow of kind "c": nothing learned for it
    assert graphs.kind_of("x") == "c"
    assert graphs.agent_ste(now) == {}


def test_the_kind_is_fixed_by_the_first_request():
    graphs = LearnedGraphs()
    assert graphs.start("w", "a", 0, kind="travel") == "travel"
    assert graphs.start("w", "b", 1, kind="other") == "travel"
    assert graphs.start("v", "b", 1) == "b"
    assert graphs.kinds == ["travel", "b"]


def test_idle_workflows_end_and_count_an_end():
    graphs = LearnedGraphs(idle_ttl_s=10.0, kind_ttl_s=100.0)
    graphs.start("w", "a", 0.0)
    graphs.finish("w", "a", 1.0)
    assert graphs.expire(10.9) == []
    assert graphs.expire(11.0) == ["w"]
    assert graphs.live_workflows == 0
    assert graphs.learner("a").ends == {"a": 1}
    assert graphs.workflow_ste("w") is None
    graphs.start("w", "b", 12.0)  # back after its end: a new workflow of kind "b"
    assert graphs.kind_of("w") == "b"
    assert "b" not in graphs.learner("a").edges.get("a", {})


def test_expiry_runs_on_every_call_that_takes_the_time():
    graphs = LearnedGraphs(idle_ttl_s=10.0, kind_ttl_s=100.0)
    graphs.start("w", "a", 0.0)
    graphs.start("v", "a", 50.0)  # w expires here
    assert graphs.kind_of("w") is None and graphs.kind_of("v") == "a"
    assert not graphs.finish("w", "a", 50.0)


def test_idle_kinds_are_dropped_with_what_they_learned():
    graphs = LearnedGraphs(idle_ttl_s=10.0, kind_ttl_s=100.0)
    teach(graphs, 3, t0=0.0)
    graphs.start("w", "x", 50.0)
    graphs.agent_ste(122.9)
    assert graphs.kinds == ["a", "x"]  # kind "a" last seen at 23 s
    graphs.agent_ste(123.0)
    assert graphs.kinds == ["x"]
    graphs.agent_ste(150.0)
    assert graphs.kinds == []


def test_beyond_max_workflows_the_least_recently_seen_is_forgotten_without_an_end():
    graphs = LearnedGraphs(max_workflows=2)
    graphs.start("w1", "a", 0)
    graphs.start("w2", "a", 1)
    graphs.start("w1", "b", 2)  # w1 seen again
    graphs.start("w3", "a", 3)
    assert graphs.kind_of("w2") is None
    assert graphs.kind_of("w1") == "a" and graphs.kind_of("w3") == "a"
    assert graphs.learner("a").ends == {}


def test_beyond_max_kinds_an_idle_kind_gives_way_else_the_new_workflow_is_untracked():
    graphs = LearnedGraphs(max_kinds=2)
    graphs.start("w1", "a", 0)
    graphs.start("w2", "b", 1)
    assert graphs.start("w3", "c", 2) is None  # both kinds have live workflows
    assert graphs.kind_of("w3") is None and graphs.kinds == ["a", "b"]
    graphs.end("w1", 3)
    assert graphs.start("w3", "c", 4) == "c"
    assert graphs.kinds == ["b", "c"]
    assert graphs.kind_of("w2") == "b"  # others go on


def test_a_full_kind_does_not_stop_its_workflow():
    graphs = LearnedGraphs(LearnerConfig(max_agents=1))
    graphs.start("w", "a", 0)
    graphs.start("w", "b", 1)  # not learned, but the workflow stays live
    assert graphs.kind_of("w") == "a"
    assert graphs.learner("a").agents == ["a"]


@pytest.mark.parametrize(
    "call",
    [
        lambda g: g.start("w", "", 0),
        lambda g: g.start("w", None, 0),
        lambda g: g.start("w", "a", math.nan),
        lambda g: g.start("w", "a", 0, kind=""),
        lambda g: g.finish("w", "a", math.inf),
        lambda g: g.agent_ste("soon"),
    ],
)
def test_a_bad_call_is_a_one_line_error_and_leaves_others_alone(call):
    graphs = LearnedGraphs()
    graphs.start("other", "a", 0)
    with pytest.raises(LearnError) as info:
        call(graphs)
    assert "\n" not in str(info.value)
    assert graphs.kind_of("other") == "a" and graphs.live_workflows == 1


@pytest.mark.parametrize(
    "kwargs",
    [{"idle_ttl_s": 0}, {"idle_ttl_s": 10, "kind_ttl_s": 5}, {"max_kinds": 0}],
)
def test_bad_settings_are_one_line_errors(kwargs):
    with pytest.raises(LearnError) as info:
        LearnedGraphs(**kwargs)
    assert "\n" not in str(info.value)


EVENTS = st.lists(
    st.tuples(
        st.sampled_from(["start", "finish", "end", "wait"]),
        st.integers(0, 3),
        st.sampled_from("abc"),
        st.floats(0, 20),
    ),
    max_size=60,
)


@settings(max_examples=150, deadline=None)
@given(events=EVENTS)
def test_random_traffic_keeps_the_books_consistent(events):
    """Whatever the traffic: a live workflow is tracked by exactly one learner of its
    kind, nothing idle for idle_ttl_s stays, and agent_ste is the minimum over the
    workflows' maps."""
    graphs = LearnedGraphs(LearnerConfig(min_observations=1), idle_ttl_s=30.0, kind_ttl_s=60.0)
    now = 0.0
    last_seen: dict[str, float] = {}
    for op, w, agent, dt in events:
        now += dt
        wid = f"w{w}"
        if op == "start":
            graphs.start(wid, agent, now)
            last_seen[wid] = now
        elif op == "finish" and graphs.finish(wid, agent, now):
            last_seen[wid] = now
        elif op == "end":
            graphs.end(wid, now)
        merged = graphs.agent_ste(now)
        want: dict[str, float] = {}
        for kind in graphs.kinds:
            for wid in graphs.learner(kind).workflows:
                assert graphs.kind_of(wid) == kind
                assert now - last_seen[wid] < 30.0
                for a, v in (graphs.workflow_ste(wid) or {}).items():
                    want[a] = min(want.get(a, math.inf), v)
        assert merged == want
        assert graphs.live_workflows == sum(len(graphs.learner(k).workflows) for k in graphs.kinds)


def test_a_new_workflow_whose_first_agent_does_not_fit_its_kind_is_untracked():
    graphs = LearnedGraphs(LearnerConfig(max_agents=1))
    assert graphs.start("w", "a", 0, kind="k") == "k"
    assert graphs.start("v", "b", 1, kind="k") is None
    assert graphs.kind_of("v") is None and graphs.live_workflows == 1
