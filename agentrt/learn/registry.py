"""`LearnedGraphs`: the learned graphs of every workflow kind, and their live workflows.

The server reports each request of a workflow (`start`, `finish`) and the end of a
workflow it is told about (`end`: DELETE, `is_last_step`); times are seconds on one
monotonic clock, passed in. A workflow's kind is fixed by its first request: the kind
hint, else the first agent's key (`AgentKey.kind_of`). Each kind has a
`TransitionLearner`.

`agent_ste(now)` is what `update_steps_to_execution` takes: per agent, the minimum
expected steps-to-execution over the live workflows whose position is known (as
`scheduler.hints.HintBoard` merges declared workflows: the nearest instance decides).
Agents of workflows in an unknown position are left out, and so fall back to LRU.

Expiry (at every call that takes `now`): a workflow without a request for `idle_ttl_s`
ends (its learner counts the end: an idle conversation is how a server sees one end; a
later request of it starts a new workflow); a kind without a request for `kind_ttl_s` is
dropped with what it learned. Bounds: beyond
`max_workflows` the least recently seen workflow is forgotten (no end counted); beyond
`max_kinds` the least recently seen kind without live workflows is dropped, and if every
kind has live workflows the new workflow is not tracked (`start` returns None).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Hashable

from agentrt.learn.agent_key import AgentKey
from agentrt.learn.config import LearnerConfig
from agentrt.learn.errors import LearnError
from agentrt.learn.transitions import TransitionLearner


class LearnedGraphs:
    def __init__(
        self,
        config: LearnerConfig | None = None,
        *,
        idle_ttl_s: float = 300.0,
        kind_ttl_s: float = 3600.0,
        max_workflows: int = 100_000,
        max_kinds: int = 1024,
    ) -> None:
        if not (0 < idle_ttl_s <= kind_ttl_s):
            raise LearnError(
                f"need 0 < idle_ttl_s <= kind_ttl_s, got {idle_ttl_s!r} and {kind_ttl_s!r}"
            )
        for name, value in (("max_workflows", max_workflows), ("max_kinds", max_kinds)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise LearnError(f"{name} must be an int >= 1, got {value!r}")
        self.config = config or LearnerConfig()
        self.idle_ttl_s = idle_ttl_s
        self.kind_ttl_s = kind_ttl_s
        self.max_workflows = max_workflows
        self.max_kinds = max_kinds
        self._learners: dict[str, TransitionLearner] = {}
        self._kind_seen: OrderedDict[str, float] = OrderedDict()  # oldest first
        self._workflows: OrderedDict[Hashable, tuple[str, float]] = OrderedDict()

    # -- events -----------------------------------------------------------------------
    def start(
        self, workflow_id: Hashable, agent: str, now: float, *, kind: str | None = None
    ) -> str | None:
        """A request of `agent` started in `workflow_id`; returns the workflow's kind, or
        None when the workflow is not tracked. `kind` is read on the first request only."""
        _check_time(now)
        if not isinstance(agent, str) or not agent:
            raise LearnError(f"an agent key must be a non-empty string, got {agent!r}")
        self.expire(now)
        entry = self._workflows.get(workflow_id)
        if entry is None:
            workflow_kind = AgentKey.kind_of(kind, agent)
            if not self._make_room_for(workflow_kind):
                return None
            self._learners.setdefault(workflow_kind, TransitionLearner(workflow_kind, self.config))
        else:
            workflow_kind = entry[0]
        learner = self._learners[workflow_kind]
        learner.start(workflow_id, agent, now)
        if workflow_id not in learner.workflows:  # its first agent did not fit the kind
            return None
        self._touch(workflow_id, workflow_kind, now)
        return workflow_kind

    def finish(self, workflow_id: Hashable, agent: str, now: float) -> bool:
        """A request of `agent` finished; False when the workflow or request is unknown."""
        _check_time(now)
        self.expire(now)
        entry = self._workflows.get(workflow_id)
        if entry is None or not self._learners[entry[0]].finish(workflow_id, agent, now):
            return False
        self._touch(workflow_id, entry[0], now)
        return True

    def end(self, workflow_id: Hashable, now: float) -> bool:
        """The workflow ended (the client said so); False when it is not tracked."""
        _check_time(now)
        self.expire(now)
        entry = self._workflows.pop(workflow_id, None)
        return entry is not None and self._learners[entry[0]].end(workflow_id)

    def expire(self, now: float) -> list[Hashable]:
        """End the idle workflows and drop the idle kinds; returns the ended workflows."""
        _check_time(now)
        ended: list[Hashable] = []
        while self._workflows:
            workflow_id, (kind, seen) = next(iter(self._workflows.items()))
            if now - seen < self.idle_ttl_s:
                break
            del self._workflows[workflow_id]
            self._learners[kind].end(workflow_id)
            ended.append(workflow_id)
        while self._kind_seen:
            kind, seen = next(iter(self._kind_seen.items()))
            if now - seen < self.kind_ttl_s or self._learners[kind].workflows:
                break
            self._drop_kind(kind)
        return ended

    # -- queries ----------------------------------------------------------------------
    def workflow_ste(self, workflow_id: Hashable) -> dict[str, float] | None:
        """One live workflow's expected STE per agent of its kind, or None if unknown."""
        entry = self._workflows.get(workflow_id)
        return None if entry is None else self._learners[entry[0]].workflow_ste(workflow_id)

    def agent_ste(self, now: float) -> dict[str, float]:
        """Minimum expected STE per agent over the live workflows in a known position."""
        self.expire(now)
        merged: dict[str, float] = {}
        for learner in self._learners.values():
            for agent, value in learner.live_ste().items():
                if agent not in merged or value < merged[agent]:
                    merged[agent] = value
        return merged

    def kind_of(self, workflow_id: Hashable) -> str | None:
        entry = self._workflows.get(workflow_id)
        return None if entry is None else entry[0]

    @property
    def kinds(self) -> list[str]:
        return list(self._learners)

    def learner(self, kind: str) -> TransitionLearner | None:
        return self._learners.get(kind)

    @property
    def live_workflows(self) -> int:
        return len(self._workflows)

    def add_learner(self, learner: TransitionLearner, now: float) -> bool:
        """Adopt a learner (e.g. loaded from JSON) as its kind's, seen at `now`. The
        live workflows of a replaced learner carry over (from their current position
        on, the adopted counts apply). False when the kind is new and `max_kinds` kinds
        all have live workflows."""
        _check_time(now)
        old = self._learners.get(learner.kind)
        if old is not None:
            learner.workflows.update(old.workflows)
        elif not self._make_room_for(learner.kind):
            return False
        self._learners[learner.kind] = learner
        self._kind_seen[learner.kind] = now
        self._kind_seen.move_to_end(learner.kind)
        return True

    # -- helpers ----------------------------------------------------------------------
    def _touch(self, workflow_id: Hashable, kind: str, now: float) -> None:
        self._workflows[workflow_id] = (kind, now)
        self._workflows.move_to_end(workflow_id)
        self._kind_seen[kind] = now
        self._kind_seen.move_to_end(kind)
        while len(self._workflows) > self.max_workflows:
            oldest, (oldest_kind, _) = next(iter(self._workflows.items()))
            del self._workflows[oldest]
            self._learners[oldest_kind].drop(oldest)

    def _make_room_for(self, kind: str) -> bool:
        """Make room for a new workflow of `kind`; False when no kind can give way."""
        if kind in self._learners or len(self._learners) < self.max_kinds:
            return True
        for old in self._kind_seen:
            if not self._learners[old].workflows:
                self._drop_kind(old)
                return True
        return False

    def _drop_kind(self, kind: str) -> None:
        learner = self._learners.pop(kind, None)
        self._kind_seen.pop(kind, None)
        for workflow_id in list(learner.workflows if learner else ()):
            del self._workflows[workflow_id]


def _check_time(now: float) -> None:
    if not isinstance(now, (int, float)) or not math.isfinite(now):
        raise LearnError(f"now must be a finite number of seconds, got {now!r}")
