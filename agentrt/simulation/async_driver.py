"""Run a world under an execution mode with real (async) step executors, e.g. LLM calls.

    class MyExecutor:
        async def run(self, plan: AgentStepPlan) -> list[str] | None:
            # one completion per plan.calls entry, prompt = plan.prefix + call.text
            ...

    result = await simulate_async(world, "ooo", steps, MyExecutor())

Ready units start at once as tasks; the agents of a unit run concurrently (each agent's
calls are the executor's business, usually one after another); when a unit's agents
have all acted the scheduler is told and newly ready units start. Returning ``None``
from ``run`` uses the world's deterministic fallback action. Results mirror `simulate`,
with wall seconds in place of virtual time.
"""

from __future__ import annotations

import time
from typing import Protocol

import anyio

from agentrt.scheduler.sim_modes import StepScheduler, TrueDeps
from agentrt.simulation.driver import SimResult, scheduler_for, world_hash
from agentrt.simulation.world import AgentStepPlan, World


class AsyncStepExecutor(Protocol):
    async def run(self, plan: AgentStepPlan) -> list[str] | None: ...


async def simulate_async(
    world: World,
    mode: str | StepScheduler,
    steps: int,
    executor: AsyncStepExecutor,
    *,
    true_deps: TrueDeps | None = None,
    record_deps: bool = False,
) -> SimResult:
    """Like `simulate`, with ``executor.run(plan)`` awaited for every agent step.

    ``makespan`` and ``busy`` are wall seconds (``busy`` sums each agent step's time in
    ``run``, so ``parallelism`` is mean agent steps in flight).
    """
    t0 = time.perf_counter()
    n = world.num_agents
    sched = scheduler_for(world, mode, steps, true_deps)
    hashes: list[list[str]] = [[""] * n for _ in range(steps)]
    deps: dict[tuple[int, int], tuple[int, ...]] | None = {} if record_deps else None
    stats = {"calls": 0, "agent_steps": 0, "busy": 0.0}
    send, receive = anyio.create_memory_object_stream[list[int]](n + 1)

    async def agent_step(i: int, s: int) -> None:
        obs = world.observe(i, s)
        plan = world.plan(obs)
        if deps is not None:
            deps[(i, s)] = obs.neighbor_ids
        started = time.perf_counter()
        outputs = await executor.run(plan)
        stats["busy"] += time.perf_counter() - started
        stats["calls"] += len(plan.calls)
        world.apply(i, s, world.act(obs, outputs))
        hashes[s][i] = world.state_hash(i, s + 1)

    async def run_unit(unit: list[int]) -> None:
        async with anyio.create_task_group() as tg:
            for i in unit:
                tg.start_soon(agent_step, i, sched.step_of(i))
        await send.send(unit)

    running = 0
    async with anyio.create_task_group() as tg:
        while True:
            for unit in sched.ready_units():
                sched.start(unit)
                running += 1
                tg.start_soon(run_unit, unit)
            if not running:
                break
            unit = await receive.receive()
            running -= 1
            stats["agent_steps"] += len(unit)
            sched.finish(unit, [world.position(i, sched.step_of(i) + 1) for i in unit])
    if not sched.done():
        raise RuntimeError(f"mode {sched.name!r} stalled before finishing {steps} steps")
    wall = time.perf_counter() - t0
    return SimResult(
        sched.name,
        n,
        steps,
        wall,
        stats["agent_steps"],
        stats["calls"],
        stats["busy"],
        world_hash(hashes),
        wall,
        deps,
    )
