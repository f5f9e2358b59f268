"""A workflow's step graph as a model server knows it: agents named by their agent ids."""

from __future__ import annotations

from agentrt.graph.agent_spec import AgentSpec
from agentrt.graph.decorators import Workflow
from agentrt.graph.step_graph import StepGraph


def agent_id_graph(workflow: Workflow) -> StepGraph:
    """`workflow.graph` with each agent renamed to `workflow.agent_id(agent)`; joins,
    visit caps and edges (forward and bounded back edges) kept, prefixes and sampling
    left out (a server sees those in the calls)."""
    graph = workflow.graph
    ids = {a: workflow.agent_id(a) for a in graph.agents}
    out = StepGraph()
    for agent in graph.agents:
        spec = graph.spec(agent)
        out.add_agent(AgentSpec(ids[agent], join=spec.join, max_visits=spec.max_visits))
    for src, dst in graph.forward_edges:
        out.add_edge(ids[src], ids[dst])
    for back in graph.back_edges:
        out.add_edge(ids[back.src], ids[back.dst], back.max_iterations)
    return out.validate()
