"""Errors of step graphs (`GraphError`: declared wrongly) and workflow states
(`WorkflowStateError`: a transition not allowed at run time); both are `ValueError`s.
"""

from __future__ import annotations

from collections.abc import Iterable


def _names(names: Iterable[str]) -> str:
    return ", ".join(repr(n) for n in names) or "(none)"


class GraphError(ValueError):
    """A step graph is declared wrongly."""


class UnknownAgentError(GraphError):
    """An edge (or a lookup) names an agent the graph does not have."""

    def __init__(self, name: str, known: Iterable[str], where: str = "") -> None:
        self.name = name
        self.known = sorted(known)
        at = f" in {where}" if where else ""
        super().__init__(f"unknown agent {name!r}{at}; known agents: {_names(self.known)}")


class DuplicateAgentError(GraphError):
    """Two agents share a name."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"duplicate agent name {name!r}: every agent needs its own name")


class DuplicateEdgeError(GraphError):
    """The same (src, dst) edge is declared twice."""

    def __init__(self, src: str, dst: str) -> None:
        self.src, self.dst = src, dst
        super().__init__(f"edge {src!r} -> {dst!r} is declared twice")


class InvalidBoundError(GraphError):
    """A loop bound (`max_iterations`, `max_visits`) is not a positive integer."""


class UnboundedCycleError(GraphError):
    """Edges without `max_iterations` form a cycle, so the workflow could loop forever."""

    def __init__(self, cycle: list[str]) -> None:
        self.cycle = cycle
        path = " -> ".join(repr(n) for n in [*cycle, cycle[0]])
        super().__init__(
            f"cycle without a bound: {path}; give the edge that closes it (the back edge) "
            f"a bound, e.g. add_edge({cycle[-1]!r}, {cycle[0]!r}, max_iterations=3)"
        )


class UnboundedSelfLoopError(UnboundedCycleError):
    """An agent has an edge to itself without `max_iterations`."""

    def __init__(self, name: str) -> None:
        self.cycle = [name]
        GraphError.__init__(
            self,
            f"edge {name!r} -> {name!r} loops on itself without a bound; "
            f"use add_edge({name!r}, {name!r}, max_iterations=N)",
        )


class NotALoopError(GraphError):
    """An edge carries `max_iterations` but closes no cycle of forward edges."""

    def __init__(self, src: str, dst: str, bound: int) -> None:
        self.src, self.dst = src, dst
        super().__init__(
            f"edge {src!r} -> {dst!r} has max_iterations={bound} but closes no cycle "
            f"({dst!r} does not reach {src!r} through edges without a bound); only the "
            f"edge that loops back takes a bound, drop it here"
        )


class NoEntryAgentError(GraphError):
    """The graph has no agent without forward predecessors (in practice: no agents)."""

    def __init__(self) -> None:
        super().__init__("step graph has no entry agent (an agent with no predecessors)")


class WorkflowStateError(ValueError):
    """A workflow transition that the graph or the current state does not allow."""


class LoopBoundError(WorkflowStateError):
    """A back edge was taken more often than its `max_iterations`, or an agent was
    activated more often than its `max_visits`."""


class LoopWithoutBoundError(UnboundedCycleError):
    """`loop_to=` was declared without `max_loops=`."""

    def __init__(self, agent: str, target: str) -> None:
        self.cycle = [target, agent]
        GraphError.__init__(
            self,
            f"agent {agent!r}: loop_to={target!r} needs max_loops=N "
            "(how many times the loop may be taken)",
        )
