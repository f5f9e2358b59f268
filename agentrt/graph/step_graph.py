"""`StepGraph`: agents and the edges that say which agent runs after which.

A `networkx.DiGraph`, one node per agent (attribute `spec`). A **forward edge**
(`max_iterations=None`) says "dst may run after src"; forward edges form a DAG, over
which joins and entry agents (no forward predecessor; all start ready) are defined. A
**back edge** (`max_iterations=N`) closes a loop (dst reaches src by forward edges, or
dst == src), may be taken at most N times per workflow instance, and re-activates dst
directly, bypassing its join.

`add_agent` / `add_edge` reject local mistakes at once; `validate()` checks the whole
graph; `index()` returns the validated `GraphIndex`, cached until the graph changes.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import networkx as nx

from agentrt.graph.agent_spec import AgentSpec, Join, is_positive_int
from agentrt.graph.errors import (
    DuplicateAgentError,
    DuplicateEdgeError,
    InvalidBoundError,
    UnboundedSelfLoopError,
    UnknownAgentError,
)
from agentrt.graph.graph_index import BackEdge, GraphIndex, build_index

EdgeLike = tuple[str, str] | tuple[str, str, int | None]


class StepGraph:
    """A declared agent program: agents (nodes) and forward / back edges."""

    def __init__(self) -> None:
        self._g = nx.DiGraph()
        self._index: GraphIndex | None = None

    def add_agent(
        self,
        agent: AgentSpec | str,
        *,
        prefix: str | Iterable[int] = "",
        join: Join = "and",
        sampling: Mapping[str, Any] | None = None,
        max_visits: int | None = None,
    ) -> AgentSpec:
        """Add an agent, given as an `AgentSpec` or as a name plus spec fields."""
        if isinstance(agent, AgentSpec):
            if prefix != "" or join != "and" or sampling is not None or max_visits is not None:
                raise TypeError("pass either an AgentSpec or a name with keyword fields")
            spec = agent
        else:
            if not isinstance(prefix, str):
                prefix = tuple(prefix)
            spec = AgentSpec(agent, prefix, join, dict(sampling or {}), max_visits)
        if spec.name in self._g:
            raise DuplicateAgentError(spec.name)
        self._g.add_node(spec.name, spec=spec)
        self._index = None
        return spec

    def add_edge(self, src: str, dst: str, max_iterations: int | None = None) -> None:
        """Add a forward edge, or a back edge when `max_iterations` is given."""
        for name in (src, dst):
            if name not in self._g:
                raise UnknownAgentError(name, self._g.nodes, where=f"edge {src!r} -> {dst!r}")
        if max_iterations is not None and not is_positive_int(max_iterations):
            raise InvalidBoundError(
                f"edge {src!r} -> {dst!r}: max_iterations must be a positive int or None, "
                f"got {max_iterations!r}"
            )
        if src == dst and max_iterations is None:
            raise UnboundedSelfLoopError(src)
        if self._g.has_edge(src, dst):
            raise DuplicateEdgeError(src, dst)
        self._g.add_edge(src, dst, max_iterations=max_iterations)
        self._index = None

    @classmethod
    def from_edges(
        cls, edges: Iterable[EdgeLike], agents: Iterable[AgentSpec | str] | None = None
    ) -> StepGraph:
        """Build and validate a graph from `(src, dst)` / `(src, dst, max_iterations)`.

        With `agents`, every edge must name one of them; without, agents are created
        (default fields) in the order their names first appear.
        """
        graph = cls()
        edges = [tuple(e) for e in edges]
        if agents is not None:
            for agent in agents:
                graph.add_agent(agent)
        else:
            for edge in edges:
                for name in edge[:2]:
                    if name not in graph:
                        graph.add_agent(name)
        for edge in edges:
            graph.add_edge(*edge)
        return graph.validate()

    @classmethod
    def from_dict(
        cls,
        adjacency: Mapping[str, Iterable[str] | Mapping[str, int | None]],
        agents: Iterable[AgentSpec | str] | None = None,
    ) -> StepGraph:
        """Build from `{src: [dst, ...]}` (forward edges) or `{src: {dst: bound}}`
        (`None` = forward, an int = back edge), e.g.
        `{"planner": ["coder"], "coder": ["reviewer"], "reviewer": {"coder": 2}}`."""
        edges: list[EdgeLike] = []
        for src, dsts in adjacency.items():
            if isinstance(dsts, Mapping):
                edges.extend((src, dst, bound) for dst, bound in dsts.items())
            else:
                edges.extend((src, dst) for dst in dsts)
        if agents is None:
            agents = list(dict.fromkeys([*adjacency, *(e[1] for e in edges)]))
        return cls.from_edges(edges, agents)

    @property
    def agents(self) -> list[str]:
        """Agent names in insertion order."""
        return list(self._g.nodes)

    def spec(self, name: str) -> AgentSpec:
        self._require(name)
        return self._g.nodes[name]["spec"]

    def __contains__(self, name: object) -> bool:
        return name in self._g

    def __len__(self) -> int:
        return len(self._g)

    def __iter__(self) -> Iterator[str]:
        return iter(self._g.nodes)

    def successors(self, name: str) -> list[str]:
        """Forward successors (back edges excluded; see `back_edges_from`)."""
        self._require(name)
        return [v for v in self._g.successors(name) if not self._is_back(name, v)]

    def predecessors(self, name: str) -> list[str]:
        """Forward predecessors: the agents `name`'s join waits on."""
        self._require(name)
        return [u for u in self._g.predecessors(name) if not self._is_back(u, name)]

    def back_edges_from(self, name: str) -> list[BackEdge]:
        self._require(name)
        return [self._back(name, v) for v in self._g.successors(name) if self._is_back(name, v)]

    def back_edges_into(self, name: str) -> list[BackEdge]:
        self._require(name)
        return [self._back(u, name) for u in self._g.predecessors(name) if self._is_back(u, name)]

    @property
    def back_edges(self) -> list[BackEdge]:
        return [self._back(u, v) for u, v in self._g.edges if self._is_back(u, v)]

    @property
    def forward_edges(self) -> list[tuple[str, str]]:
        return [(u, v) for u, v in self._g.edges if not self._is_back(u, v)]

    @property
    def entry_agents(self) -> list[str]:
        """Agents without forward predecessors, in insertion order."""
        return [a for a in self._g.nodes if not self.predecessors(a)]

    @property
    def nx_graph(self) -> nx.DiGraph:
        """Read-only view of the underlying graph (edge attribute `max_iterations`)."""
        return self._g.copy(as_view=True)

    def topological_order(self) -> tuple[str, ...]:
        """Topological order of the forward DAG (validates; cached)."""
        return self.index().order

    def validate(self) -> StepGraph:
        """Check the whole graph; raise a `GraphError` subclass on the first problem."""
        self.index()
        return self

    def index(self) -> GraphIndex:
        """The validated `GraphIndex`; built on first use after a change."""
        if self._index is None:
            self._index = build_index(self._g)
        return self._index

    def _is_back(self, u: str, v: str) -> bool:
        return self._g.edges[u, v]["max_iterations"] is not None

    def _back(self, u: str, v: str) -> BackEdge:
        return BackEdge(u, v, self._g.edges[u, v]["max_iterations"])

    def _require(self, name: str) -> None:
        if name not in self._g:
            raise UnknownAgentError(name, self._g.nodes)

    def __repr__(self) -> str:
        return f"StepGraph(agents={len(self)}, edges={self._g.number_of_edges()})"
