"""A `StepGraph` in the body `POST /v1/workflows` of an agentrt server takes."""

from __future__ import annotations

from typing import Any

from agentrt.graph.step_graph import StepGraph


def graph_body(graph: StepGraph) -> dict[str, Any]:
    """`{"agents": [{"name", "join", "max_visits"}], "edges": [[src, dst] |
    [src, dst, max_iterations]]}` (`serve.workflows.graph_from_body` reads it back)."""
    agents = []
    for name in graph.agents:
        spec = graph.spec(name)
        agents.append({"name": name, "join": spec.join, "max_visits": spec.max_visits})
    edges: list[list[Any]] = [[src, dst] for src, dst in graph.forward_edges]
    edges.extend([b.src, b.dst, b.max_iterations] for b in graph.back_edges)
    return {"agents": agents, "edges": edges}
