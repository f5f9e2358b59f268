"""A declared graph and a learned graph give the same STE on a fixed traffic pattern.

The traffic is what a declared `StepGraph` produces when run step by step: the KVFlow
"single" shape (a chain a1 -> ... -> aN whose last agent loops back to a1, `rounds`
visits in all). The learner sees only request starts and finishes, each identified by
the hash of its agent's fixed prefix (no hints). After a few workflows it must give,
at every request start of a new workflow, exactly the declared steps-to-execution of
every agent the declared graph says can still run.
"""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from agentrt.bench.kvflow_workloads import KVFlowWorkload
from agentrt.graph.ste import steps_to_execution
from agentrt.graph.workflow_state import WorkflowState
from agentrt.learn import AgentKey, LearnedGraphs

KEYS = AgentKey(block_size=16)


def run_declared(workload: KVFlowWorkload, graphs: LearnedGraphs, workflow_id: str, t0: float):
    """Run one instance of the declared graph; report each request to `graphs`.

    Yields, after each request start, (declared STE by agent name, learned STE by name)."""
    graph = workload.workflow().graph
    key_of = {
        name: KEYS.of(prefix_ids=p) for name, p in zip(graph.agents, workload.prefixes, strict=True)
    }
    name_of = {key: name for name, key in key_of.items()}
    back = {e.src: e.dst for e in graph.back_edges}
    state = WorkflowState(graph)
    now = t0
    while not state.finished:
        (agent,) = state.ready
        state.start(agent)
        graphs.start(workflow_id, key_of[agent], now)
        learned = graphs.workflow_ste(workflow_id)
        yield (
            steps_to_execution(graph, state),
            None if learned is None else {name_of[k]: v for k, v in learned.items()},
        )
        now += 1.0
        loop = back.get(agent)
        take = [loop] if loop is not None and state.loops_left(agent, loop) > 0 else None
        state.finish(agent, take)
        graphs.finish(workflow_id, key_of[agent], now)
        now += 0.5
    graphs.end(workflow_id, now)


def learn(workload: KVFlowWorkload, graphs: LearnedGraphs, instances: int) -> float:
    now = 0.0
    for i in range(instances):
        for _ in run_declared(workload, graphs, f"train-{i}", now):
            pass
        now += 1000.0
    return now


def assert_same_ste(declared: dict[str, float], learned: dict[str, float]) -> None:
    for agent, value in declared.items():
        if math.isfinite(value):
            assert learned[agent] == value, (agent, declared, learned)


@settings(max_examples=40, deadline=None)
@given(agents=st.integers(2, 6), rounds=st.integers(1, 4), instances=st.integers(3, 5))
def test_learned_ste_equals_declared_ste_on_the_kvflow_single_shape(agents, rounds, instances):
    workload = KVFlowWorkload("single", agents, 1, rounds, prefix=40, dynamic=4, output=2)
    graphs = LearnedGraphs(idle_ttl_s=100.0)
    now = learn(workload, graphs, instances)
    checked = 0
    for declared, learned in run_declared(workload, graphs, "fresh", now):
        assert learned is not None
        assert_same_ste(declared, learned)
        checked += sum(math.isfinite(v) for v in declared.values())
    assert checked >= agents * rounds


def test_the_learned_ste_orders_agents_as_the_declared_one_does():
    workload = KVFlowWorkload("single", 4, 1, 3, prefix=40, dynamic=4, output=2)
    graphs = LearnedGraphs(idle_ttl_s=100.0)
    now = learn(workload, graphs, 3)
    for declared, learned in run_declared(workload, graphs, "fresh", now):
        finite = sorted((a for a in declared if math.isfinite(declared[a])), key=declared.get)
        assert sorted(finite, key=learned.get) == finite
        # e.g. while a2 runs in round 1: a2 0, a3 1, a4 2, a1 3
        assert [declared[a] for a in finite] == [learned[a] for a in finite]


def test_before_enough_traffic_the_position_is_unknown():
    """With fewer than min_observations transitions out of an agent the learner says
    "unknown" (the caller falls back to LRU)."""
    workload = KVFlowWorkload("single", 3, 1, 1, prefix=40, dynamic=4, output=2)
    graphs = LearnedGraphs(idle_ttl_s=100.0)
    now = learn(workload, graphs, 2)
    for _, learned in run_declared(workload, graphs, "third", now):
        assert learned is None
    for _, learned in run_declared(workload, graphs, "fourth", now + 1000.0):
        assert learned is not None
