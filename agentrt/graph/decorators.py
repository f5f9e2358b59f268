"""Declaring agent programs in Python: a `Workflow` and its `@wf.agent` functions.

    wf = Workflow("review")

    @wf.agent(prefix="You are a planner.")
    async def planner(ctx): ...

    @wf.agent(prefix="You are a reviewer.", after=[planner], loop_to=planner, max_loops=2)
    async def reviewer(ctx): ...

An agent is an async function of its `AgentContext`. Edges come from `after=` (forward)
and `loop_to=` with `max_loops=` (a bounded back edge), or from an explicit `StepGraph`.
`timeout=` bounds each run of the agent (seconds).

Mistakes fail at the decoration that makes them, with one line. An edge to an agent
declared later waits for it; whenever none is open the whole graph is validated. A name
never declared is reported when the workflow is first used (`wf.graph`, `run`, `submit`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from agentrt.graph.agent_options import (
    check_agent_function,
    check_max_loops,
    check_prefix,
    check_timeout,
    make_sampling,
)
from agentrt.graph.agent_spec import Join
from agentrt.graph.errors import GraphError, LoopWithoutBoundError, UnknownAgentError
from agentrt.graph.step_graph import StepGraph

AgentFn = Callable[[Any], Awaitable[Any]]


@dataclass(frozen=True)
class AgentDef:
    """A registered agent: its name, function and the workflow it belongs to."""

    name: str
    fn: AgentFn
    workflow: Workflow = field(repr=False)


AgentRef = AgentDef | str


@dataclass(frozen=True)
class _Edge:
    """A declared edge not yet in the graph (it names an agent declared later)."""

    src: str
    dst: str
    bound: int | None
    where: str  # the keyword that declared it, for errors


def _refs(refs: Iterable[AgentRef] | AgentRef) -> list[AgentRef]:
    return [refs] if isinstance(refs, (AgentDef, str)) else list(refs)


class Workflow:
    def __init__(self, name: str, graph: StepGraph | None = None) -> None:
        if not name or "/" in name:
            raise GraphError(f"workflow name must be non-empty without '/', got {name!r}")
        self.name = name
        self._explicit = graph is not None
        self._graph = graph.validate() if graph is not None else StepGraph()
        self._pending: list[_Edge] = []
        self.functions: dict[str, AgentFn] = {}
        self.timeouts: dict[str, float] = {}
        self._validated = False

    def agent(
        self,
        fn: AgentFn | None = None,
        *,
        name: str | None = None,
        prefix: str | Iterable[int] = "",
        after: Iterable[AgentRef] | AgentRef = (),
        join: Join = "and",
        loop_to: AgentRef | None = None,
        max_loops: int | None = None,
        max_visits: int | None = None,
        timeout: float | None = None,
        **sampling: Any,
    ) -> Callable[[AgentFn], AgentDef] | AgentDef:
        """Register an async agent function. Extra keywords are its default sampling
        settings (e.g. `max_tokens=64`, `temperature=0.7`); `timeout` bounds each run."""

        def register(func: AgentFn) -> AgentDef:
            agent_name = check_agent_function(name, func)
            make_sampling(agent_name, sampling)
            check_prefix(agent_name, prefix)
            check_max_loops(agent_name, max_loops)
            check_timeout(f"agent {agent_name!r}", timeout)
            if agent_name in self.functions:
                raise GraphError(f"workflow {self.name!r} already has an agent {agent_name!r}")
            if self._explicit:
                if after or loop_to is not None or prefix or sampling:
                    raise GraphError(
                        "with an explicit StepGraph, declare prefix, edges and sampling there"
                    )
                self._graph.spec(agent_name)  # raises UnknownAgentError with known names
            else:
                if max_loops is not None and loop_to is None:
                    raise GraphError(f"agent {agent_name!r}: max_loops needs loop_to")
                if loop_to is not None and max_loops is None:
                    raise LoopWithoutBoundError(agent_name, self._name(loop_to))
                edges = [
                    _Edge(self._name(src), agent_name, None, f"after= of {agent_name!r}")
                    for src in _refs(after)
                ]
                if loop_to is not None:
                    target = self._name(loop_to)
                    edges.append(
                        _Edge(agent_name, target, max_loops, f"loop_to= of {agent_name!r}")
                    )
                self._graph.add_agent(
                    agent_name, prefix=prefix, join=join, sampling=sampling, max_visits=max_visits
                )
                self._pending.extend(edges)
            self.functions[agent_name] = func
            if timeout is not None:
                self.timeouts[agent_name] = float(timeout)
            self._validated = False
            self._add_resolved_edges()
            return AgentDef(agent_name, func, self)

        return register(fn) if fn is not None else register

    def _name(self, ref: AgentRef) -> str:
        if isinstance(ref, AgentDef):
            if ref.workflow is not self:
                raise GraphError(
                    f"agent {ref.name!r} belongs to workflow {ref.workflow.name!r}, "
                    f"not {self.name!r}"
                )
            return ref.name
        if not isinstance(ref, str):
            raise GraphError(f"an agent is named by its function or a str, got {ref!r}")
        return ref

    def _add_resolved_edges(self) -> None:
        """Add the pending edges whose agents are all declared now; with none left open,
        validate the whole graph (a later declaration cannot change what it checks)."""
        still = []
        for edge in self._pending:
            if edge.src in self._graph and edge.dst in self._graph:
                self._graph.add_edge(edge.src, edge.dst, edge.bound)
            else:
                still.append(edge)
        self._pending = still
        if not still and not self._explicit:
            self._graph.validate()

    @property
    def graph(self) -> StepGraph:
        """The validated step graph; raises the first declaration problem left open
        (an edge to an agent that was never declared, an agent without a function)."""
        if not self._validated:
            for edge in self._pending:
                missing = edge.src if edge.src not in self._graph else edge.dst
                raise UnknownAgentError(missing, self.functions, where=edge.where)
            self._graph.validate()
            missing_fns = [a for a in self._graph.agents if a not in self.functions]
            if missing_fns:
                raise GraphError(f"workflow {self.name!r}: no function for agents {missing_fns}")
            self._validated = True
        return self._graph

    @property
    def exits(self) -> list[str]:
        """Agents without forward successors: their results are the workflow's output."""
        graph = self.graph
        return [a for a in graph.agents if not graph.successors(a)]

    def agent_id(self, agent: str) -> str:
        """The id the engine and KV manager know this agent by (shared by all instances)."""
        return f"{self.name}/{agent}"
