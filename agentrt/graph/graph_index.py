"""`GraphIndex`: the validated, precomputed view of a step graph that STE walks."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import networkx as nx

from agentrt.graph.agent_spec import AgentSpec
from agentrt.graph.errors import (
    NoEntryAgentError,
    NotALoopError,
    UnboundedCycleError,
    UnboundedSelfLoopError,
)


@dataclass(frozen=True)
class BackEdge:
    """A bounded edge that closes a loop: `src` may re-activate `dst` at most
    `max_iterations` times per workflow instance."""

    src: str
    dst: str
    max_iterations: int


@dataclass(frozen=True)
class GraphIndex:
    """Validated view of a `StepGraph` (read-only; the graph rebuilds it after a change).

    `order`: a topological order of the forward DAG (insertion order breaks ties); `preds` /
    `succs`: forward neighbours in insertion order; `back_in` / `back_out`: back edges into
    and out of each agent; `entries`: the agents without forward predecessors.
    """

    order: tuple[str, ...]
    specs: Mapping[str, AgentSpec]
    preds: Mapping[str, tuple[str, ...]]
    succs: Mapping[str, tuple[str, ...]]
    back_in: Mapping[str, tuple[BackEdge, ...]]
    back_out: Mapping[str, tuple[BackEdge, ...]]
    entries: tuple[str, ...]


def build_index(g: nx.DiGraph) -> GraphIndex:
    """Validate `g` and index it. Raises, in this order of checks: `NoEntryAgentError`
    (no agents), `UnboundedSelfLoopError` / `UnboundedCycleError` (forward edges are not a
    DAG; the error names the cycle), `NotALoopError` (a bound on an edge closing no loop)."""
    if len(g) == 0:
        raise NoEntryAgentError()
    fwd = nx.subgraph_view(g, filter_edge=lambda u, v: g.edges[u, v]["max_iterations"] is None)
    try:
        cycle = [u for u, _ in nx.find_cycle(fwd)]
    except nx.NetworkXNoCycle:
        cycle = []
    if len(cycle) == 1:
        raise UnboundedSelfLoopError(cycle[0])
    if cycle:
        raise UnboundedCycleError(cycle)
    back = [BackEdge(u, v, b) for u, v, b in g.edges(data="max_iterations") if b is not None]
    for e in back:
        if e.src != e.dst and not nx.has_path(fwd, e.dst, e.src):
            raise NotALoopError(e.src, e.dst, e.max_iterations)
    names = list(g.nodes)
    position = {a: i for i, a in enumerate(names)}
    preds = {a: tuple(fwd.predecessors(a)) for a in names}
    back_in: dict[str, list[BackEdge]] = {a: [] for a in names}
    back_out: dict[str, list[BackEdge]] = {a: [] for a in names}
    for e in back:
        back_in[e.dst].append(e)
        back_out[e.src].append(e)
    return GraphIndex(
        order=tuple(nx.lexicographical_topological_sort(fwd, key=position.__getitem__)),
        specs={a: g.nodes[a]["spec"] for a in names},
        preds=preds,
        succs={a: tuple(fwd.successors(a)) for a in names},
        back_in={a: tuple(edges) for a, edges in back_in.items()},
        back_out={a: tuple(edges) for a, edges in back_out.items()},
        entries=tuple(a for a in names if not preds[a]),
    )
