"""Steps-to-execution (STE) of simulation agents, for the workflow-aware KV manager.

An agent's STE estimates how many agent steps (of anyone) must finish before it next
calls the model (kvflow evicts the largest first; the prefetcher loads STE <= ``prefetch_k``):

- an agent in a ready or running unit: **0**; one that finished every step: not published;
- ``ooo`` (`SpatialTracker`): an idle agent at step ``a`` waits for its blockers, each at
  some step ``b < a``: STE = ``max(1, max over blockers of (a - b))``;
- every other mode: STE = ``max(1, step - m)``, ``m`` the lowest step of any unfinished
  agent.

`HintedScheduler` wraps a `StepScheduler` and calls ``on_change`` after every
``start``/``finish`` so a runner can republish the hints.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from agentrt.scheduler.sim_modes import StepScheduler
from agentrt.scheduler.spatial_index import Pos
from agentrt.scheduler.spatial_tracker import SpatialTracker


def agent_key(agent: int) -> str:
    """The engine-side agent id of simulation agent ``agent``."""
    return f"town/{agent}"


class HintedScheduler:
    """A `StepScheduler` that tracks its running agents and reports schedule changes."""

    def __init__(
        self, inner: StepScheduler, max_step: int, on_change: Callable[[HintedScheduler], None]
    ) -> None:
        self.inner = inner
        self.name = inner.name
        self.max_step = max_step
        self.running: set[int] = set()
        self.on_change = on_change

    def ready_units(self) -> list[list[int]]:
        return self.inner.ready_units()

    def start(self, unit: Sequence[int]) -> None:
        self.inner.start(unit)
        self.running.update(unit)
        self.on_change(self)

    def finish(self, unit: Sequence[int], new_positions: Sequence[Pos]) -> None:
        self.inner.finish(unit, new_positions)
        self.running.difference_update(unit)
        self.on_change(self)

    def step_of(self, agent: int) -> int:
        return self.inner.step_of(agent)

    def done(self) -> bool:
        return self.inner.done()

    def ste(self, agents: Iterable[int]) -> dict[int, float]:
        """STE of each unfinished agent in ``agents`` (see the module docstring)."""
        return steps_to_execution(self.inner, agents, self.running, self.max_step)


def steps_to_execution(
    sched: StepScheduler, agents: Iterable[int], running: set[int], max_step: int
) -> dict[int, float]:
    """STE per unfinished agent of ``agents``; ``running``: agents in started units.
    Agents in ready (not yet started) units also get 0."""
    agents = list(agents)
    ready = {i for unit in sched.ready_units() for i in unit}
    out: dict[int, float] = {}
    if isinstance(sched, SpatialTracker):
        for i in agents:
            a = sched.step_of(i)
            if a >= max_step:
                continue
            if i in running or i in ready:
                out[i] = 0.0
                continue
            blockers = sched.blockers(i)
            lag = max((a - sched.step_of(b) for b in blockers), default=1)
            out[i] = float(max(1, lag))
        return out
    steps = {i: sched.step_of(i) for i in agents}
    live = [s for s in steps.values() if s < max_step]
    low = min(live, default=0)
    for i, a in steps.items():
        if a >= max_step:
            continue
        out[i] = 0.0 if (i in running or i in ready) else float(max(1, a - low))
    return out
