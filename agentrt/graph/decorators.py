"""Declaring agent programs in Python: a `Workflow` and its `@wf.agent` functions.

    wf = Workflow("review")

    @wf.agent(prefix="You are a planner.")
    async def planner(ctx): ...

    @wf.agent(prefix="You are a coder.", after=[planner])
    async def coder(ctx): ...

    @wf.agent(prefix="You are a reviewer.", after=[coder], loop_to=coder, max_loops=2)
    async def reviewer(ctx):
        if "LGTM" not in (verdict := await ctx.gen(...)):
            ctx.goto("coder")          # take the bounded back edge
        return verdict

An agent is an async function of one argument, its `AgentContext` (see
`agentrt.scheduler.context`). Edges come from `after=` (forward) and `loop_to=` with
`max_loops=` (a bounded back edge); alternatively pass an explicit `StepGraph` and only
register the functions. The graph is validated when first used.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from agentrt.graph.agent_spec import Join
from agentrt.graph.errors import GraphError, UnknownAgentError
from agentrt.graph.step_graph import StepGraph

AgentFn = Callable[[Any], Awaitable[Any]]


@dataclass(frozen=True)
class AgentDef:
    """A registered agent: its name, function and the workflow it belongs to."""

    name: str
    fn: AgentFn
    workflow: Workflow = field(repr=False)


AgentRef = AgentDef | str


def _name(ref: AgentRef) -> str:
    return ref.name if isinstance(ref, AgentDef) else ref


class Workflow:
    def __init__(self, name: str, graph: StepGraph | None = None) -> None:
        if not name or "/" in name:
            raise GraphError(f"workflow name must be non-empty without '/', got {name!r}")
        self.name = name
        self._explicit = graph is not None
        self._graph = graph if graph is not None else StepGraph()
        self._edges: list[tuple[str, str, int | None]] = []
        self.functions: dict[str, AgentFn] = {}
        self._validated = False

    def agent(
        self,
        fn: AgentFn | None = None,
        *,
        name: str | None = None,
        prefix: str | Iterable[int] = "",
        after: Iterable[AgentRef] = (),
        join: Join = "and",
        loop_to: AgentRef | None = None,
        max_loops: int | None = None,
        max_visits: int | None = None,
        **sampling: Any,
    ) -> Callable[[AgentFn], AgentDef] | AgentDef:
        """Register an async agent function. Extra keywords are its default sampling
        settings (e.g. `max_tokens=64`, `temperature=0.7`)."""

        def register(func: AgentFn) -> AgentDef:
            agent_name = name or func.__name__
            if agent_name in self.functions:
                raise GraphError(f"workflow {self.name!r} already has an agent {agent_name!r}")
            if self._explicit:
                if after or loop_to is not None or prefix or sampling:
                    raise GraphError(
                        "with an explicit StepGraph, declare prefix, edges and sampling there"
                    )
                self._graph.spec(agent_name)  # raises UnknownAgentError with known names
            else:
                self._graph.add_agent(
                    agent_name, prefix=prefix, join=join, sampling=sampling, max_visits=max_visits
                )
                self._edges.extend((_name(src), agent_name, None) for src in after)
                if loop_to is not None:
                    self._edges.append((agent_name, _name(loop_to), max_loops))
                elif max_loops is not None:
                    raise GraphError(f"agent {agent_name!r}: max_loops needs loop_to")
            self.functions[agent_name] = func
            self._validated = False
            return AgentDef(agent_name, func, self)

        return register(fn) if fn is not None else register

    @property
    def graph(self) -> StepGraph:
        """The validated step graph (edges are added once every agent is registered)."""
        if not self._validated:
            for src, dst, bound in self._edges:
                if bound is None and src not in self.functions:
                    raise UnknownAgentError(src, self.functions, where=f"after= of {dst!r}")
                self._graph.add_edge(src, dst, bound)
            self._edges.clear()
            self._graph.validate()
            missing = [a for a in self._graph.agents if a not in self.functions]
            if missing:
                raise GraphError(f"workflow {self.name!r}: no function for agents {missing}")
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

    def sampling(self, agent: str) -> Mapping[str, Any]:
        return self.graph.spec(agent).sampling
