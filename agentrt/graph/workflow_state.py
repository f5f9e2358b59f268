"""`WorkflowState`: where one running instance of a step graph stands.

Execution model (the contract `steps_to_execution` is defined against):

- Each agent is **idle**, **ready** (activated, waiting to be started) or **running**.
  A new workflow activates every entry agent. *Activating* an agent makes it ready,
  empties its inbox and counts one activation (against `AgentSpec.max_visits`).
- `finish(a, take)` completes a running agent and hands control to `take` (default: all
  forward successors, never a back edge). A **forward edge** a -> v *signals* v: a ready
  v drops it; otherwise a joins v's inbox, and an idle v whose join holds (AND: every
  forward predecessor, OR: any) is activated; a running v is, if its join holds, when
  it finishes. A **back edge** a -> v needs a run left, v idle (or v == a) and not
  exhausted; it activates v at once, bypassing v's join.
- Every activation consumes the inbox: an OR-join runs once more for signals reaching it
  while it runs, and an AND-join inside a loop waits for all its predecessors again.
- An agent is **exhausted** once its activations reach `max_visits`: signals to it are
  kept but never activate it, and a back edge into it cannot be taken.

Errors: `WorkflowStateError` for a transition the state does not allow (the state is
unchanged); its subclass `LoopBoundError` when a bound would be exceeded.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable

from agentrt.graph.errors import LoopBoundError, WorkflowStateError
from agentrt.graph.step_graph import StepGraph


class WorkflowState:
    """Mutable state of one workflow instance over a (validated) `StepGraph`."""

    def __init__(self, graph: StepGraph) -> None:
        self.graph = graph
        self._ready: set[str] = set()
        self._running: set[str] = set()
        self._visits: Counter[str] = Counter()
        self._activations: Counter[str] = Counter()
        self._inbox: defaultdict[str, set[str]] = defaultdict(set)
        self._loops: Counter[tuple[str, str]] = Counter()
        for agent in graph.index().entries:
            self._activate(agent)

    @property
    def ready(self) -> frozenset[str]:
        return frozenset(self._ready)

    @property
    def running(self) -> frozenset[str]:
        return frozenset(self._running)

    @property
    def active(self) -> frozenset[str]:
        """Ready or running agents (steps-to-execution 0)."""
        return frozenset(self._ready | self._running)

    @property
    def finished(self) -> bool:
        """True when nothing is ready or running: no agent can ever run again."""
        return not self._ready and not self._running

    def is_active(self, agent: str) -> bool:
        return agent in self._ready or agent in self._running

    def visits(self, agent: str) -> int:
        """Completed runs of `agent`."""
        return self._visits[agent]

    def activations(self, agent: str) -> int:
        """Times `agent` was activated (made ready), including a pending or current run."""
        return self._activations[agent]

    def inbox(self, agent: str) -> frozenset[str]:
        """Forward predecessors whose signal `agent` holds for its next activation."""
        return frozenset(self._inbox.get(agent, ()))

    def loops_taken(self, src: str, dst: str) -> int:
        return self._loops[src, dst]

    def loops_left(self, src: str, dst: str) -> int:
        """Remaining runs of back edge src -> dst (0 if there is no such back edge)."""
        for edge in self.graph.index().back_out.get(src, ()):
            if edge.dst == dst:
                return edge.max_iterations - self._loops[src, dst]
        return 0

    def exhausted(self, agent: str) -> bool:
        """True once `agent` has been activated `max_visits` times."""
        spec = self.graph.index().specs.get(agent)
        cap = spec.max_visits if spec is not None else None
        return cap is not None and self._activations[agent] >= cap

    def can_take(self, src: str, dst: str) -> bool:
        """Whether running `src` could hand control to `dst` if it finished now."""
        index = self.graph.index()
        if dst in index.succs.get(src, ()):
            return True
        return self._back_edge_problem(src, dst) is None

    def start(self, agent: str) -> None:
        """Move a ready agent to running."""
        if agent not in self._ready:
            raise WorkflowStateError(f"cannot start {agent!r}: it is not ready{self._where()}")
        self._ready.remove(agent)
        self._running.add(agent)

    def finish(self, agent: str, take: Iterable[str] | None = None) -> set[str]:
        """Complete a running agent and hand control to `take` (default: all forward
        successors). Returns the agents this activated (possibly `agent` itself)."""
        if agent not in self._running:
            raise WorkflowStateError(f"cannot finish {agent!r}: it is not running{self._where()}")
        index = self.graph.index()
        forward = index.succs[agent]
        targets = list(forward) if take is None else list(dict.fromkeys(take))
        loops = [v for v in targets if v not in forward]
        for v in loops:
            problem = self._back_edge_problem(agent, v)
            if problem is not None:
                raise problem
        self._running.remove(agent)
        self._visits[agent] += 1
        activated: set[str] = set()
        for v in targets:
            if v in forward:
                self._signal(agent, v, activated)
        for v in loops:
            self._loops[agent, v] += 1
            self._activate(v)
            activated.add(v)
        if agent not in self._ready and self._can_activate(agent):
            self._activate(agent)
            activated.add(agent)
        return activated

    def copy(self) -> WorkflowState:
        new = WorkflowState.__new__(WorkflowState)
        new.graph = self.graph
        new._ready, new._running = set(self._ready), set(self._running)
        new._visits, new._activations = Counter(self._visits), Counter(self._activations)
        new._inbox = defaultdict(set, {a: set(s) for a, s in self._inbox.items() if s})
        new._loops = Counter(self._loops)
        return new

    def _signal(self, src: str, dst: str, activated: set[str]) -> None:
        if dst in self._ready:
            return
        self._inbox[dst].add(src)
        if dst not in self._running and self._can_activate(dst):
            self._activate(dst)
            activated.add(dst)

    def _can_activate(self, agent: str) -> bool:
        preds = self.graph.index().preds.get(agent, ())
        inbox = self._inbox.get(agent, ())
        if not preds or not inbox or self.exhausted(agent):
            return False
        if self.graph.index().specs[agent].join == "or":
            return True
        return all(p in inbox for p in preds)

    def _activate(self, agent: str) -> None:
        self._ready.add(agent)
        self._activations[agent] += 1
        self._inbox.pop(agent, None)

    def _back_edge_problem(self, src: str, dst: str) -> WorkflowStateError | None:
        index = self.graph.index()
        edge = next((e for e in index.back_out.get(src, ()) if e.dst == dst), None)
        if edge is None:
            known = [*index.succs.get(src, ()), *(e.dst for e in index.back_out.get(src, ()))]
            return WorkflowStateError(f"{src!r} has no edge to {dst!r}; its successors: {known}")
        if self._loops[src, dst] >= edge.max_iterations:
            return LoopBoundError(
                f"back edge {src!r} -> {dst!r} was already taken "
                f"max_iterations={edge.max_iterations} times"
            )
        if dst != src and self.is_active(dst):
            return WorkflowStateError(
                f"cannot loop back {src!r} -> {dst!r}: {dst!r} is still ready or running"
            )
        if self.exhausted(dst):
            return LoopBoundError(f"cannot loop back to {dst!r}: its max_visits is reached")
        return None

    def _where(self) -> str:
        return f" (ready: {sorted(self._ready)}, running: {sorted(self._running)})"

    def __repr__(self) -> str:
        return (
            f"WorkflowState(ready={sorted(self._ready)}, running={sorted(self._running)}, "
            f"visits={dict(self._visits)})"
        )
