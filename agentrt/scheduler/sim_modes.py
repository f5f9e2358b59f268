"""Execution modes of a multi-agent simulation, as schedulers over one interface.

A *unit* is a list of agent ids that run their next agent step together. Every mode has
`ready_units()` (pure), `start(unit)`, `finish(unit, new_positions)`, `done()` (every
agent reached ``max_step``) and `step_of(agent)`. Modes: ``single`` (one agent step at a
time, in (step, agent) order), ``sync`` (every agent of a step at once, a barrier between
steps), ``ooo`` (`SpatialTracker`) and ``oracle`` (the true dependencies of a finished
run: an agent step waits for its own previous step and those of the agents it perceived).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol

from agentrt.scheduler.spatial_index import Pos
from agentrt.scheduler.spatial_tracker import SpatialTracker
from agentrt.scheduler.tracker import DependencyTracker

MODES = ("single", "sync", "ooo", "oracle")

#: (agent, step) -> agents whose state at ``step`` that agent step read (perceived or
#: talked to). Its step ``s`` then needs their step ``s - 1`` done.
TrueDeps = Mapping[tuple[int, int], Iterable[int]]


class StepScheduler(Protocol):
    name: str

    def ready_units(self) -> list[list[int]]: ...

    def start(self, unit: Sequence[int]) -> None: ...

    def finish(self, unit: Sequence[int], new_positions: Sequence[Pos]) -> None: ...

    def step_of(self, agent: int) -> int: ...

    def done(self) -> bool: ...


class _Stepwise:
    """Shared bookkeeping for modes that run one step at a time, in agent order."""

    def __init__(self, num_agents: int, max_step: int) -> None:
        self.num_agents = num_agents
        self.max_step = max_step
        self._steps = [0] * num_agents
        self._running: set[int] = set()
        self._finished_in_step = 0
        self._step = 0 if num_agents else max_step
        self._pending: dict[int, None] = {}  # agents offered and not started
        self._next = 0  # next agent of the current step to offer
        self._offer()

    def _offer(self) -> None:
        raise NotImplementedError

    def step_of(self, agent: int) -> int:
        return self._steps[agent]

    def done(self) -> bool:
        return self._step >= self.max_step

    def ready_units(self) -> list[list[int]]:
        return [[i] for i in self._pending]

    def start(self, unit: Sequence[int]) -> None:
        if len(unit) != 1 or unit[0] not in self._pending:
            raise ValueError(f"{list(unit)} is not a ready unit")
        del self._pending[unit[0]]
        self._running.add(unit[0])

    def finish(self, unit: Sequence[int], new_positions: Sequence[Pos]) -> None:
        for i in unit:
            if i not in self._running:
                raise ValueError(f"agent {i} is not running")
            self._running.discard(i)
            self._steps[i] += 1
        self._finished_in_step += len(unit)
        if self._finished_in_step == self.num_agents:
            self._finished_in_step = 0
            self._next = 0
            self._step += 1
        self._offer()


class SyncScheduler(_Stepwise):
    """All agents of a step in parallel; the next step starts when all have finished."""

    name = "sync"

    def _offer(self) -> None:
        if not self.done() and self._next == 0:
            self._pending = dict.fromkeys(range(self.num_agents))
            self._next = self.num_agents


class SingleScheduler(_Stepwise):
    """One agent step at a time, in (step, agent) order."""

    name = "single"

    def _offer(self) -> None:
        if not self.done() and not self._running and not self._pending:
            self._pending = {self._next: None}
            self._next += 1


class OracleScheduler:
    """Releases each agent step once its true dependencies (from a finished run) are done."""

    name = "oracle"

    def __init__(self, num_agents: int, max_step: int, deps: TrueDeps) -> None:
        self._tracker = DependencyTracker()
        self._steps = [0] * num_agents
        self._offered: dict[int, None] = {}
        self._left = num_agents * max_step
        for s in range(max_step):
            for i in range(num_agents):
                need = () if s == 0 else {i, *deps.get((i, s), ())}
                self._tracker.add((i, s), [(j, s - 1) for j in sorted(need)], step=s)

    def step_of(self, agent: int) -> int:
        return self._steps[agent]

    def done(self) -> bool:
        return self._left == 0

    def ready_units(self) -> list[list[int]]:
        for call in self._tracker.pop_ready():
            self._offered[call.id[0]] = None
        return [[i] for i in self._offered]

    def start(self, unit: Sequence[int]) -> None:
        if len(unit) != 1 or unit[0] not in self._offered:
            raise ValueError(f"{list(unit)} is not a ready unit")
        del self._offered[unit[0]]

    def finish(self, unit: Sequence[int], new_positions: Sequence[Pos]) -> None:
        (i,) = unit
        self._tracker.complete((i, self._steps[i]))
        self._steps[i] += 1
        self._left -= 1


def make_scheduler(
    mode: str,
    positions: Sequence[Pos],
    *,
    radius: float,
    speed: float,
    max_step: int,
    true_deps: TrueDeps | None = None,
) -> StepScheduler:
    """The scheduler for ``mode`` (one of `MODES`); ``oracle`` needs ``true_deps``."""
    n = len(positions)
    if mode == "single":
        return SingleScheduler(n, max_step)
    if mode == "sync":
        return SyncScheduler(n, max_step)
    if mode == "ooo":
        return SpatialTracker(positions, radius, speed, max_step)
    if mode == "oracle":
        if true_deps is None:
            raise ValueError("mode 'oracle' needs the true dependencies of a finished run")
        return OracleScheduler(n, max_step, true_deps)
    raise ValueError(f"unknown mode {mode!r}; choose from {', '.join(MODES)}")
