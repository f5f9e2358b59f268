"""`TransitionLearner`: the learned graph of one workflow kind.

It watches the live workflows of its kind (`start`, `finish`, `end`, `drop`; times in
seconds, passed in) and learns, per agent, which agent's request comes next:

- every request start is a transition from the workflow's source (`WorkflowTrack`) to the
  started agent, counted per edge with its delay (from the source's last event: its
  finish when reported, else its start) and the most times one workflow took the edge;
- the first request of a workflow counts as a start of that agent (`starts`);
- `end` (the workflow ended, or went idle) counts a transition from the source to the end
  (`ends`); `drop` forgets a workflow without that.

Probabilities are counts over all transitions out of an agent, ends included. An agent
with fewer than `config.min_observations` of them is not *confident*. `workflow_ste`
gives a workflow's expected steps-to-execution of every agent of the kind (0 for its
running agents, `learn/hitting.py` for the rest, minimum over its positions), or `None`
("unknown": fall back to LRU) when no position is confident. The hitting-time table is
computed again when a new agent appeared or the transitions observed (`observed`) grew
by `config.refresh_growth` since it was last computed; in between it is at most that
stale, and the cost of a busy kind stays O(log of its traffic) computations.

Requests of a new agent when `config.max_agents` are known are not learned: the workflow
keeps its position, so others' learning goes on. Transitions and ends are counted only
out of known agents (a workflow carried over from a replaced learner may stand at an
agent this one does not know).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

from agentrt.learn.config import LearnerConfig
from agentrt.learn.hitting import expected_steps
from agentrt.learn.stats import DelayStats
from agentrt.learn.workflow_track import WorkflowTrack


@dataclass
class EdgeStats:
    """One learned transition src -> dst."""

    count: int
    delay: DelayStats
    max_per_workflow: int = 0


class TransitionLearner:
    def __init__(self, kind: str, config: LearnerConfig | None = None) -> None:
        self.kind = kind
        self.config = config or LearnerConfig()
        self.requests: Counter[str] = Counter()  # agent -> requests learned (agents known)
        self.starts: Counter[str] = Counter()
        self.ends: Counter[str] = Counter()
        self.edges: dict[str, dict[str, EdgeStats]] = {}
        self.workflows: dict[Hashable, WorkflowTrack] = {}
        self.observed = 0  # transitions counted, ends included
        self._table: dict[str, dict[str, float]] = {}
        self._table_observed = -1

    # -- observation ------------------------------------------------------------------
    def start(self, workflow_id: Hashable, agent: str, now: float) -> bool:
        """A request of `agent` started; False when the agent is not learned (kind full)."""
        if agent not in self.requests and len(self.requests) >= self.config.max_agents:
            return False
        track = self.workflows.get(workflow_id)
        if track is None:
            track = self.workflows[workflow_id] = WorkflowTrack()
            self.starts[agent] += 1
        else:
            source = track.source()
            if source is not None and source[0] in self.requests:
                self._count_edge(track, source[0], agent, max(0.0, now - source[1]))
        self.requests[agent] += 1
        track.started(agent, now)
        return True

    def finish(self, workflow_id: Hashable, agent: str, now: float) -> bool:
        """A request of `agent` finished; False when it was not known to be running."""
        track = self.workflows.get(workflow_id)
        return track is not None and track.finished(agent, now)

    def end(self, workflow_id: Hashable) -> bool:
        """The workflow ended: count source -> end and forget it."""
        track = self.workflows.pop(workflow_id, None)
        if track is None:
            return False
        source = track.source()
        if source is not None and source[0] in self.requests:
            self.ends[source[0]] += 1
            self.observed += 1
        return True

    def drop(self, workflow_id: Hashable) -> bool:
        """Forget a workflow without learning anything from its disappearance."""
        return self.workflows.pop(workflow_id, None) is not None

    def _count_edge(self, track: WorkflowTrack, src: str, dst: str, delay: float) -> None:
        row = self.edges.setdefault(src, {})
        edge = row.get(dst)
        if edge is None:
            edge = row[dst] = EdgeStats(0, DelayStats(self.config.alpha, self.config.window))
        edge.count += 1
        edge.delay.add(delay)
        self.observed += 1
        track.edges_taken[src, dst] += 1
        edge.max_per_workflow = max(edge.max_per_workflow, track.edges_taken[src, dst])

    # -- the learned chain ------------------------------------------------------------
    @property
    def agents(self) -> list[str]:
        """Known agents, in the order first seen."""
        return list(self.requests)

    def observations(self, agent: str) -> int:
        """Transitions observed out of `agent`, ends included."""
        return sum(e.count for e in self.edges.get(agent, {}).values()) + self.ends[agent]

    def confident(self, agent: str) -> bool:
        return self.observations(agent) >= self.config.min_observations

    def probabilities(self) -> dict[str, dict[str, float]]:
        """`P[src][dst]` for every known agent (an agent never left has an empty row);
        the rest of a row is the probability that the workflow ends there."""
        probs: dict[str, dict[str, float]] = {}
        for agent in self.requests:
            total = self.observations(agent)
            row = self.edges.get(agent, {})
            probs[agent] = {dst: e.count / total for dst, e in row.items()} if total else {}
        return probs

    def ste_table(self) -> dict[str, dict[str, float]]:
        """`table[source][target]` of `learn/hitting.py` for every known agent."""
        grown = self.observed > self._table_observed * (1 + self.config.refresh_growth)
        if grown or len(self._table) != len(self.requests):
            self._table = expected_steps(
                self.probabilities(),
                horizon=self.config.horizon,
                min_hit_prob=self.config.min_hit_prob,
            )
            self._table_observed = self.observed
        return self._table

    def workflow_ste(self, workflow_id: Hashable) -> dict[str, float] | None:
        """Expected steps-to-execution of every known agent for one live workflow, or
        `None` when the workflow is unknown or none of its positions is confident."""
        track = self.workflows.get(workflow_id)
        if track is None:
            return None
        return self._ste_at(frozenset(track.positions()), frozenset(track.running))

    def live_ste(self) -> dict[str, float]:
        """Minimum over the live workflows in a known position of `workflow_ste`;
        computed once per distinct (positions, running agents)."""
        merged: dict[str, float] = {}
        seen: set[tuple[frozenset[str], frozenset[str]]] = set()
        for track in self.workflows.values():
            at = (frozenset(track.positions()), frozenset(track.running))
            if at in seen:
                continue
            seen.add(at)
            for agent, value in (self._ste_at(*at) or {}).items():
                if agent not in merged or value < merged[agent]:
                    merged[agent] = value
        return merged

    def _ste_at(
        self, positions: frozenset[str], running: frozenset[str]
    ) -> dict[str, float] | None:
        confident = [p for p in positions if self.confident(p)]
        if not confident:
            return None
        table = self.ste_table()
        ste = {agent: min(table[p][agent] for p in confident) for agent in self.requests}
        for agent in running:
            ste[agent] = 0
        return ste

    # -- persistence (the shapes of learn/schema.py) ------------------------------------
    def to_dict(self) -> dict[str, Any]:
        probs = self.probabilities()
        return {
            "kind": self.kind,
            "agents": [{"key": a, "requests": n} for a, n in self.requests.items()],
            "starts": dict(self.starts),
            "ends": dict(self.ends),
            "transitions": [
                {
                    "src": src,
                    "dst": dst,
                    "count": edge.count,
                    "probability": probs[src][dst],
                    "max_per_workflow": edge.max_per_workflow,
                    "delay_s": edge.delay.to_dict(),
                }
                for src, row in self.edges.items()
                for dst, edge in row.items()
            ],
        }

    @classmethod
    def from_dict(
        cls, data: dict[str, Any], config: LearnerConfig | None = None
    ) -> TransitionLearner:
        """Inverse of `to_dict` for a document validated by `learn/schema.py`; the
        probabilities are derived from the counts again."""
        learner = cls(data["kind"], config)
        for agent in data["agents"]:
            learner.requests[agent["key"]] = agent["requests"]
        learner.starts.update(data["starts"])
        learner.ends.update(data["ends"])
        for t in data["transitions"]:
            edge = EdgeStats(t["count"], DelayStats.from_dict(t["delay_s"]), t["max_per_workflow"])
            learner.edges.setdefault(t["src"], {})[t["dst"]] = edge
            learner.observed += edge.count
        learner.observed += sum(learner.ends.values())
        return learner
