"""Which queued agent runs the runtime starts now: priority order, barrier, running cap."""

from __future__ import annotations

from agentrt.scheduler.priority import make_priority
from agentrt.scheduler.workflow_run import AgentRun, WorkflowRun


class ReadyRuns:
    """Ready agent runs in the order of ``priority`` (`agentrt.scheduler.priority`).

    With ``barrier`` they start step by step across all workflows, a step only once no
    run is active (the global-sync baseline); else at once, up to ``max_running`` active
    runs (None: no cap). Runs of a failed or cancelled workflow are dropped."""

    def __init__(self, priority: str, barrier: bool, max_running: int | None) -> None:
        self.queue = make_priority(priority)
        self.barrier = barrier
        self.max_running = max_running
        self._held: list[AgentRun] = []  # popped but waiting for the barrier's step

    def release(self, active: int) -> list[AgentRun]:
        """The runs to start now, with ``active`` runs under way."""
        if not self.barrier:
            cap = self.max_running
            return self._pop(None if cap is None else cap - active)
        if active:
            return []
        self._held += self._pop()
        if not self._held:
            return []
        step = min(a.step for a in self._held)
        now = [a for a in self._held if a.step == step]
        self._held = [a for a in self._held if a.step != step]
        return now

    def _pop(self, limit: int | None = None) -> list[AgentRun]:
        out: list[AgentRun] = []
        while self.queue and (limit is None or len(out) < limit):
            agent_run = self.queue.pop()
            if agent_run.run.error is None:
                out.append(agent_run)
        return out

    def drop(self, run: WorkflowRun) -> None:
        """Forget the held runs of ``run``, which ended."""
        self._held = [a for a in self._held if a.run is not run]
