"""The simulation loop: a unit's lifecycle, whatever runs its LLM calls.

    ready units -> start -> each agent observes and plans -> calls (executor)
    -> each agent acts, its state is written and hashed -> scheduler.finish

`UnitLoop` does all of it but the calls. Its executor (`driver.VirtualClock`,
`async_driver.AgentTasks`, `cosim.CosimEngines`) runs each started `Unit`'s calls on its
own clock, may fill in `AgentStep.outputs` (``None``: the world's fallback action) and
hands finished units back from ``wait``. The loop keeps the world hash and, with
``record_deps``, the true dependencies (the agents each agent step perceived).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from agentrt.scheduler.sim_modes import StepScheduler, TrueDeps, make_scheduler
from agentrt.simulation.result import SimResult, world_hash
from agentrt.simulation.world import AgentStepPlan, Observation, World


@dataclass(slots=True, eq=False)
class AgentStep:
    """Agent ``agent`` running its step ``step`` inside ``unit``."""

    agent: int
    step: int
    obs: Observation
    plan: AgentStepPlan
    unit: Unit
    outputs: list[str] | None = None  # one per planned call; None: the fallback action


@dataclass(slots=True, eq=False)
class Unit:
    """A started unit: its agents (the scheduler's order) and their agent steps; executors
    may count ``left`` down from the number of agents as they finish their calls."""

    agents: list[int]
    steps: list[AgentStep] = field(default_factory=list)
    left: int = 0


class UnitExecutor(Protocol):
    """``start``: run the unit's calls from the current time (False: done at once).
    ``wait``: the units that finish next, in finish order, with the clock moved to
    then (None: no unit runs)."""

    def start(self, unit: Unit) -> bool: ...

    def wait(self) -> list[Unit] | None: ...


class AsyncUnitExecutor(Protocol):
    """A `UnitExecutor` whose ``wait`` is awaited."""

    def start(self, unit: Unit) -> bool: ...

    async def wait(self) -> list[Unit] | None: ...


def scheduler_for(
    world: World, mode: str | StepScheduler, steps: int, true_deps: TrueDeps | None = None
) -> StepScheduler:
    """`mode` as a scheduler over `world`'s starting positions (a scheduler passes through)."""
    if not isinstance(mode, str):
        return mode
    starts = [world.position(i, 0) for i in range(world.num_agents)]
    return make_scheduler(
        mode,
        starts,
        radius=world.radius,
        speed=world.speed,
        max_step=steps,
        true_deps=true_deps,
    )


class UnitLoop:
    """Runs ``steps`` steps of a fresh ``world`` under ``mode`` (`scheduler_for`); one
    loop per run. ``check`` is called with the scheduler after every finished unit."""

    def __init__(
        self,
        world: World,
        mode: str | StepScheduler,
        steps: int,
        *,
        true_deps: TrueDeps | None = None,
        record_deps: bool = False,
        check: Callable[[StepScheduler], None] | None = None,
    ) -> None:
        self.world = world
        self.sched = scheduler_for(world, mode, steps, true_deps)
        self.steps = steps
        self.check = check
        self.hashes: list[list[str]] = [[""] * world.num_agents for _ in range(steps)]
        self.deps: dict[tuple[int, int], tuple[int, ...]] | None = {} if record_deps else None
        self.agent_steps = 0

    def begin(self, agents: list[int]) -> Unit:
        """Start a ready unit: each agent observes and plans its step."""
        world, sched, deps = self.world, self.sched, self.deps
        sched.start(agents)
        unit = Unit(agents, left=len(agents))
        for i in agents:
            s = sched.step_of(i)
            obs = world.observe(i, s)
            unit.steps.append(AgentStep(i, s, obs, world.plan(obs), unit))
            if deps is not None:
                deps[(i, s)] = obs.neighbor_ids
        return unit

    def end(self, unit: Unit) -> None:
        """Each agent acts on its outputs and its state is written and hashed; then the
        scheduler learns where the unit's agents now stand."""
        world, hashes = self.world, self.hashes
        positions = []
        for st in unit.steps:
            i, s = st.agent, st.step
            world.apply(i, s, world.act(st.obs, st.outputs))
            hashes[s][i] = world.state_hash(i, s + 1)
            positions.append(world.position(i, s + 1))
        self.agent_steps += len(unit.steps)
        self.sched.finish(unit.agents, positions)
        if self.check is not None:
            self.check(self.sched)

    def release(self, executor: UnitExecutor | AsyncUnitExecutor) -> None:
        """Start every ready unit on ``executor``; a unit done at once ends at once, and
        then the scheduler is asked again."""
        sched = self.sched
        while units := sched.ready_units():
            for agents in units:
                unit = self.begin(agents)
                if not executor.start(unit):
                    self.end(unit)

    def run(self, executor: UnitExecutor) -> None:
        """Run until no unit is ready or running."""
        self.release(executor)
        while (units := executor.wait()) is not None:
            for unit in units:
                self.end(unit)
            self.release(executor)

    async def run_async(self, executor: AsyncUnitExecutor) -> None:
        """`run`, awaiting ``executor.wait``."""
        self.release(executor)
        while (units := await executor.wait()) is not None:
            for unit in units:
                self.end(unit)
            self.release(executor)

    def result(
        self, makespan: float, calls: int, busy: float, wall_s: float, extra: dict[str, Any]
    ) -> SimResult:
        """The run's `SimResult`, with the executor's clock and counts; `RuntimeError`
        if the scheduler stalled before the last step."""
        if not self.sched.done():
            raise RuntimeError(
                f"mode {self.sched.name!r} stalled before finishing {self.steps} steps"
            )
        return SimResult(
            self.sched.name,
            self.world.num_agents,
            self.steps,
            makespan,
            self.agent_steps,
            calls,
            busy,
            world_hash(self.hashes),
            wall_s,
            self.deps,
            extra,
        )
