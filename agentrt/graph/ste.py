"""Steps-to-execution (STE): how many steps until each agent of a workflow can run.

Definition. Time advances in synchronous *steps*: in one step every ready or running agent
runs to completion and hands control on as `agentrt.graph.workflow_state` says, with any
choice of `take` the graph allows. STE(v) is the least number of steps after which v can
be ready or running, over all such futures; `math.inf` if no future activates v again.
So STE is optimistic per agent (loops taken and OR-branches chosen in v's favour), while
an AND-join waits for its slowest missing input.

Computation. STE is the unique solution of, for every agent v:

    STE(v) = 0                                  if v is ready or running
           = inf                                if v is exhausted (max_visits reached)
           = min(F(v), L(v))                    otherwise, with
    F(v)   = 1 + max{STE(p) : p forward pred of v, p not in v's inbox}    (AND-join)
           = 1 + min{STE(p) : p forward pred of v}                        (OR-join)
           = inf                                                          (entry agent)
    L(v)   = 1 + min{STE(u) : back edge u -> v with runs left}            (inf if none)

tests/test_ste_hypothesis.py checks it against a brute-force search over all futures.
One sweep in the forward DAG's topological order settles every term but L, whose sources
come later; the sweep repeats while a back edge still improves its target, at most B + 1
times (B back edges, each used at most once per shortest derivation): O((B+1)(V+E)).
"""

from __future__ import annotations

import math

from agentrt.graph.graph_index import BackEdge, GraphIndex
from agentrt.graph.step_graph import StepGraph
from agentrt.graph.workflow_state import WorkflowState

INF = math.inf


def steps_to_execution(graph: StepGraph, state: WorkflowState) -> dict[str, float]:
    """STE of every agent of `graph` in `state` (keys in topological order).

    Finite values are ints; agents that can never run again get `math.inf`.
    """
    if state.graph is not graph:
        raise ValueError("state belongs to a different StepGraph")
    index = graph.index()
    ste: dict[str, float] = dict.fromkeys(index.order, INF)
    settled = {v for v in index.order if state.is_active(v) or state.exhausted(v)}
    for v in settled:
        if state.is_active(v):
            ste[v] = 0
    loops = [
        e
        for v in index.order
        if v not in settled
        for e in index.back_in[v]
        if state.loops_left(e.src, e.dst) > 0
    ]
    loops_into: dict[str, list[BackEdge]] = {}
    for e in loops:
        loops_into.setdefault(e.dst, []).append(e)
    for _ in range(len(loops) + 1):
        _sweep(index, state, ste, settled, loops_into)
        if all(ste[e.dst] <= 1 + ste[e.src] for e in loops):
            return ste
    raise AssertionError("steps_to_execution did not settle in B + 1 sweeps")


def _sweep(
    index: GraphIndex,
    state: WorkflowState,
    ste: dict[str, float],
    settled: set[str],
    loops_into: dict[str, list[BackEdge]],
) -> None:
    """One pass in topological order. Forward terms read values already updated in this
    pass; loop terms read their source's value from the previous pass (it comes later)."""
    for v in index.order:
        if v in settled:
            continue
        best = ste[v]
        preds = index.preds[v]
        if preds:
            if index.specs[v].join == "or":
                best = min(best, 1 + min(ste[p] for p in preds))
            else:
                inbox = state.inbox(v)
                best = min(best, 1 + max(ste[p] for p in preds if p not in inbox))
        for e in loops_into.get(v, ()):
            best = min(best, 1 + ste[e.src])
        ste[v] = best


def due_next(
    graph: StepGraph,
    state: WorkflowState,
    k: int = 1,
    ste: dict[str, float] | None = None,
) -> set[str]:
    """Agents whose prefix should be resident soon: STE <= k and not running.

    That is the ready agents (STE 0, about to be started) plus idle agents at most `k`
    steps away. Running agents are left out: their prefix is already in use. Pass `ste`
    (from `steps_to_execution`) to avoid computing it again.
    """
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    values = steps_to_execution(graph, state) if ste is None else ste
    running = state.running
    return {a for a, s in values.items() if s <= k and a not in running}


def ste_json(value: float | None) -> float | None:
    """An STE as JSON has it: `math.inf` (never again) as null."""
    return None if value is None or math.isinf(value) else value
