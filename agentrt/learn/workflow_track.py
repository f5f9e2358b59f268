"""`WorkflowTrack`: where one live workflow stands, as its learner needs to know.

The *source* of the workflow's next transition is the agent whose request finished last,
or, before any finish was reported, the agent whose request started last: a fan-out
a -> {b, c} whose branches start after a finished is learned as a -> b and a -> c. The
*positions* STE is computed from are the running agents, plus the agent that finished
last when that finish is the workflow's latest event (the workflow waits between
requests), or the source when nothing runs.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class WorkflowTrack:
    """Mutable per-workflow state kept by a `TransitionLearner` (times in seconds)."""

    last_started: str | None = None
    started_at: float = 0.0
    last_finished: str | None = None
    finished_at: float = 0.0
    running: Counter[str] = field(default_factory=Counter)
    edges_taken: Counter[tuple[str, str]] = field(default_factory=Counter)
    finished_last: bool = False  # the latest event was a finish

    def source(self) -> tuple[str, float] | None:
        """(agent, time of its last event) the next request will be a transition from."""
        if self.last_finished is not None:
            return self.last_finished, self.finished_at
        if self.last_started is not None:
            return self.last_started, self.started_at
        return None

    def positions(self) -> set[str]:
        positions = set(self.running)
        if self.finished_last and self.last_finished is not None:
            positions.add(self.last_finished)
        source = self.source()
        if not positions and source is not None:
            positions.add(source[0])
        return positions

    def started(self, agent: str, now: float) -> None:
        self.last_started, self.started_at = agent, now
        self.running[agent] += 1
        self.finished_last = False

    def finished(self, agent: str, now: float) -> bool:
        """Record a finish; False (nothing changes) when `agent` was not running."""
        if not self.running[agent]:
            return False
        self.running[agent] -= 1
        if not self.running[agent]:
            del self.running[agent]
        self.last_finished, self.finished_at = agent, now
        self.finished_last = True
        return True
