"""Run a world under an execution mode with real (async) step executors, e.g. LLM calls.

    class MyExecutor:
        async def run(self, plan: AgentStepPlan) -> list[str] | None:
            # one completion per plan.calls entry, prompt = plan.prefix + call.text
            ...

    result = await simulate_async(world, "ooo", steps, MyExecutor())

`AgentTasks` is the `UnitLoop` executor: each agent of a started unit runs as a task; a
unit finishes when all its agents have their outputs (``None`` from ``run``: the world's
deterministic fallback action). Results mirror `simulate`, in wall seconds.
"""

from __future__ import annotations

import time
from typing import Protocol

import anyio
from anyio.abc import TaskGroup

from agentrt.scheduler.sim_modes import StepScheduler, TrueDeps
from agentrt.simulation.result import SimResult
from agentrt.simulation.unit_loop import AgentStep, Unit, UnitLoop
from agentrt.simulation.world import AgentStepPlan, World


class AsyncStepExecutor(Protocol):
    async def run(self, plan: AgentStepPlan) -> list[str] | None: ...


class AgentTasks:
    """`AsyncUnitExecutor` running agent steps as tasks of ``tg``. ``busy`` sums each agent
    step's wall seconds in ``run`` (so ``parallelism`` is mean agent steps in flight)."""

    def __init__(self, executor: AsyncStepExecutor, tg: TaskGroup, num_agents: int) -> None:
        self.executor = executor
        self.tg = tg
        self.send, self.receive = anyio.create_memory_object_stream[Unit](num_agents + 1)
        self.running = 0
        self.calls = 0
        self.busy = 0.0

    def start(self, unit: Unit) -> bool:
        self.running += 1
        for st in unit.steps:
            self.tg.start_soon(self._run_agent, st)
        return True

    async def wait(self) -> list[Unit] | None:
        if not self.running:
            return None
        unit = await self.receive.receive()
        self.running -= 1
        return [unit]

    async def _run_agent(self, st: AgentStep) -> None:
        started = time.perf_counter()
        st.outputs = await self.executor.run(st.plan)
        self.busy += time.perf_counter() - started
        self.calls += len(st.plan.calls)
        st.unit.left -= 1
        if not st.unit.left:
            await self.send.send(st.unit)


async def simulate_async(
    world: World,
    mode: str | StepScheduler,
    steps: int,
    executor: AsyncStepExecutor,
    *,
    true_deps: TrueDeps | None = None,
    record_deps: bool = False,
) -> SimResult:
    """Like `simulate`, with ``executor.run(plan)`` awaited for every agent step;
    ``makespan`` and ``busy`` are wall seconds."""
    t0 = time.perf_counter()
    loop = UnitLoop(world, mode, steps, true_deps=true_deps, record_deps=record_deps)
    async with anyio.create_task_group() as tg:
        tasks = AgentTasks(executor, tg, world.num_agents)
        await loop.run_async(tasks)
    wall = time.perf_counter() - t0
    return loop.result(wall, tasks.calls, tasks.busy, wall, {})
