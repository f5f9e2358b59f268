"""Property tests of steps-to-execution on random step graphs and random execution prefixes.

Graphs: random forward DAGs with random AND/OR joins, up to two random bounded back edges
(each closing a real loop, bound 1-2, self-loops included) and a few `max_visits` caps.
States: every state along a random execution (valid `start` / `finish(take=...)` moves)
from a new workflow until it finishes.

Invariants (STE as defined in `agentrt.graph.ste`):

1. Exactness: STE equals the earliest step at which the agent is ready or running, found
   by brute force over every synchronous future (all `take` choices); inf when no future
   activates it. Hence STE == 0 iff ready or running, and STE finite iff it can still run.
2. Local rules: an idle, non-exhausted OR-join is at most 1 + STE of any predecessor; an
   idle AND-join that no loop can re-enter is at least 1 + STE of every predecessor it
   has not heard from yet. (The naive "every predecessor" is false: a predecessor that
   already signalled may never run again, STE inf, while the join is one step away.)
3. Bound: a finite STE(v) <= depth(v) + B * (D + 1) and <= V - 1 (depth: longest forward
   path to v, D: longest forward path, B: back edges).
4. `start` changes no STE (ready and running are both "0 steps away").
5. Finishing a running agent a, taking every edge it may take now, never increases any
   other agent's STE. With a narrower `take` it can (declining a loop or a branch makes
   agents unreachable; see test_step_graph), but agents that a cannot reach through any
   edge keep their STE exactly, whatever `take` is.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from itertools import combinations

import networkx as nx
from hypothesis import given, settings
from hypothesis import strategies as st

from agentrt.graph import StepGraph, WorkflowState, WorkflowStateError, steps_to_execution
from agentrt.graph.ste import ste_json

INF = math.inf
FAST = settings(max_examples=100, deadline=None)


# -- strategies -------------------------------------------------------------------------
@st.composite
def graphs(draw: st.DrawFn, max_agents: int = 7) -> StepGraph:
    n = draw(st.integers(1, max_agents))
    names = [f"a{i}" for i in range(n)]  # a0..an-1 is a topological order
    pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
    forward = [
        p
        for p, keep in zip(
            pairs,
            draw(st.lists(st.booleans(), min_size=len(pairs), max_size=len(pairs))),
            strict=True,
        )
        if keep
    ]
    dag = nx.DiGraph(forward)
    dag.add_nodes_from(range(n))
    loopable = [(i, j) for i in range(n) for j in range(i + 1) if nx.has_path(dag, j, i)]
    back = draw(st.lists(st.sampled_from(loopable), max_size=2, unique=True))
    g = StepGraph()
    for i in draw(st.permutations(range(n))):
        g.add_agent(
            names[i],
            join=draw(st.sampled_from(["and", "or"])),
            max_visits=draw(st.one_of(st.none(), st.none(), st.integers(1, 3))),
        )
    for i, j in draw(st.permutations(forward)):
        g.add_edge(names[i], names[j])
    for i, j in back:
        g.add_edge(names[i], names[j], max_iterations=draw(st.integers(1, 2)))
    return g.validate()


def takes(state: WorkflowState, agent: str) -> list[str]:
    """Every edge `agent` could take if it finished now."""
    graph = state.graph
    loops = [e.dst for e in graph.back_edges_from(agent) if state.can_take(agent, e.dst)]
    return graph.successors(agent) + loops


def walk(data: st.DataObject, graph: StepGraph) -> Iterator[WorkflowState]:
    """Yield the states of one random execution of `graph`, from a new workflow until it
    is finished. Each move picks an active agent and starts it if it is ready; a running
    agent (or, on a coin flip, the one just started) then finishes with a random choice of
    edges. Callers may look at the states but not change them."""
    state = WorkflowState(graph)
    yield state
    for _ in range(6 * len(graph)):
        if state.finished:
            return
        agent = data.draw(st.sampled_from(sorted(state.active)))
        if agent in state.ready:
            state.start(agent)
            if data.draw(st.booleans()):
                yield state
                continue
        options = takes(state, agent)
        subsets = st.lists(st.sampled_from(options), unique=True) if options else st.just([])
        state.finish(agent, data.draw(st.one_of(st.none(), st.just(options), subsets)))
        yield state


# -- brute force ------------------------------------------------------------------------
def key(state: WorkflowState) -> tuple:
    g = state.graph
    return (
        state.ready,
        state.running,
        tuple(state.activations(a) for a in g.agents if g.spec(a).max_visits),
        tuple(state.inbox(a) for a in g.agents),
        tuple(state.loops_taken(e.src, e.dst) for e in g.back_edges),
    )


def sync_step(state: WorkflowState) -> list[WorkflowState]:
    """All states one synchronous step later: every ready/running agent runs and finishes
    (in name order) with every subset of its successors and back-edge targets."""
    base = state.copy()
    for agent in sorted(base.ready):
        base.start(agent)
    layer = [base]
    for agent in sorted(base.running):
        options = state.graph.successors(agent) + [
            e.dst for e in state.graph.back_edges_from(agent)
        ]
        out: dict[tuple, WorkflowState] = {}
        for s in layer:
            for r in range(len(options) + 1):
                for take in combinations(options, r):
                    nxt = s.copy()
                    try:
                        nxt.finish(agent, take)
                    except WorkflowStateError:
                        continue
                    out[key(nxt)] = nxt
        layer = list(out.values())
    return layer


def earliest_activation(state: WorkflowState) -> dict[str, float]:
    best: dict[str, float] = dict.fromkeys(state.graph.agents, INF)
    seen = {key(state)}
    layer, step = [state], 0
    while layer:
        for s in layer:
            for agent in s.active:
                best[agent] = min(best[agent], step)
        nxt = []
        for s in layer:
            for t in sync_step(s):
                if key(t) not in seen:
                    seen.add(key(t))
                    nxt.append(t)
        layer, step = nxt, step + 1
    return best


# -- invariants ---------------------------------------------------------------------------
@settings(max_examples=200, deadline=None)
@given(graphs(max_agents=5), st.data())
def test_ste_is_the_earliest_activation_over_all_futures(graph, data):
    for state in walk(data, graph):
        ste = steps_to_execution(graph, state)
        assert ste == earliest_activation(state)
        assert all((value == 0) == state.is_active(a) for a, value in ste.items())


@FAST
@given(graphs(), st.data())
def test_local_join_rules(graph, data):
    for state in walk(data, graph):
        ste = steps_to_execution(graph, state)
        for v in graph.agents:
            if state.is_active(v) or state.exhausted(v):
                assert ste[v] == (0 if state.is_active(v) else INF)
                continue
            preds = graph.predecessors(v)
            if graph.spec(v).join == "or":
                assert all(ste[v] <= ste[p] + 1 for p in preds)
            elif not any(state.loops_left(e.src, v) for e in graph.back_edges_into(v)):
                assert all(ste[v] >= ste[p] + 1 for p in preds if p not in state.inbox(v))


@FAST
@given(graphs(), st.data())
def test_ste_is_bounded_by_forward_depth_plus_loops(graph, data):
    depth = dict.fromkeys(graph.agents, 0)
    for v in graph.topological_order():
        for w in graph.successors(v):
            depth[w] = max(depth[w], depth[v] + 1)
    longest, loops = max(depth.values()), len(graph.back_edges)
    for state in walk(data, graph):
        for v, value in steps_to_execution(graph, state).items():
            if value < INF:
                assert value <= depth[v] + loops * (longest + 1)
                assert value <= len(graph) - 1


@FAST
@given(graphs(), st.data())
def test_start_changes_no_ste(graph, data):
    for state in walk(data, graph):
        before = steps_to_execution(graph, state)
        for agent in sorted(state.ready):
            started = state.copy()
            started.start(agent)
            assert steps_to_execution(graph, started) == before


@FAST
@given(graphs(), st.data())
def test_finishing_with_every_edge_never_increases_other_ste(graph, data):
    for state in walk(data, graph):
        before = steps_to_execution(graph, state)
        for agent in sorted(state.running):
            done = state.copy()
            done.finish(agent, takes(state, agent))
            after = steps_to_execution(graph, done)
            assert all(after[v] <= before[v] for v in after if v != agent)


@FAST
@given(graphs(), st.data())
def test_finishing_leaves_agents_it_cannot_reach_alone(graph, data):
    for state in walk(data, graph):
        before = steps_to_execution(graph, state)
        for agent in sorted(state.running):
            options = takes(state, agent)
            subsets = st.lists(st.sampled_from(options), unique=True)
            take = data.draw(subsets) if options else []
            done = state.copy()
            done.finish(agent, take)
            after = steps_to_execution(graph, done)
            unreachable = set(graph.agents) - nx.descendants(graph.nx_graph, agent) - {agent}
            assert all(after[v] == before[v] for v in unreachable)


def test_ste_json_writes_never_again_as_null():
    assert ste_json(math.inf) is None and ste_json(None) is None
    assert ste_json(0.0) == 0.0 and ste_json(3.0) == 3.0
