"""Run a world under an execution mode on a virtual clock (no LLM, no wall time).

The loop is a heap of unit completion times. Whenever units are ready they start at the
current virtual time: each agent of a unit observes, plans its LLM calls and runs them
one after another (a call's duration comes from the `VirtualExecutor`); the agents of a
unit run side by side and the unit completes with its slowest agent. On completion each
agent acts (deterministic fallback), its state is written and the scheduler is told.

This is the skeleton the LLM runner keeps: it replaces the virtual durations by real
calls (``world.plan(obs).calls`` sent with ``plan.prefix`` as the fixed prefix, outputs
given to ``world.act(obs, outputs)``) and the heap by an event loop.

The *world hash* digests every agent's state after every step, in (step, agent) order,
so it does not depend on the order in which agent steps ran.
"""

from __future__ import annotations

import hashlib
import heapq
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from agentrt.scheduler.sim_modes import MODES, StepScheduler, TrueDeps, make_scheduler
from agentrt.simulation.world import AgentStepPlan, LLMCall, Observation, World


@dataclass(frozen=True)
class VirtualExecutor:
    """Virtual seconds per call: ``fixed + per_word * words(text) + per_token * max_tokens``
    (the persona prefix is assumed cached, so only the dynamic text costs prefill)."""

    fixed: float = 0.02
    per_word: float = 0.002
    per_token: float = 0.02

    def duration(self, call: LLMCall) -> float:
        return (
            self.fixed + self.per_word * len(call.text.split()) + self.per_token * call.max_tokens
        )

    def durations(self, plan: AgentStepPlan) -> list[float]:
        return [self.duration(c) for c in plan.calls]


@dataclass
class SimResult:
    mode: str
    agents: int
    steps: int
    makespan: float  # virtual seconds
    agent_steps: int
    calls: int
    busy: float  # sum of call durations
    world_hash: str
    wall_s: float
    true_deps: dict[tuple[int, int], tuple[int, ...]] | None = field(default=None, repr=False)
    extra: dict[str, Any] = field(default_factory=dict, repr=False)  # runner-specific stats

    @property
    def parallelism(self) -> float:
        """Mean LLM calls in flight."""
        return self.busy / self.makespan if self.makespan else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "agents": self.agents,
            "steps": self.steps,
            "makespan": self.makespan,
            "agent_steps": self.agent_steps,
            "calls": self.calls,
            "parallelism": self.parallelism,
            "world_hash": self.world_hash,
            "wall_s": self.wall_s,
            **self.extra,
        }


def world_hash(step_hashes: list[list[str]]) -> str:
    """Digest of ``step_hashes[s][agent]`` = hash of the agent's state after step s."""
    h = hashlib.blake2b(digest_size=16)
    for row in step_hashes:
        for x in row:
            h.update(x.encode())
    return h.hexdigest()


def scheduler_for(
    world: World, mode: str | StepScheduler, steps: int, true_deps: TrueDeps | None = None
) -> StepScheduler:
    """`mode` as a scheduler over `world`'s starting positions (a scheduler passes through)."""
    if not isinstance(mode, str):
        return mode
    return make_scheduler(
        mode,
        world.positions(0),
        radius=world.radius,
        speed=world.speed,
        max_step=steps,
        true_deps=true_deps,
    )


def simulate(
    world: World,
    mode: str | StepScheduler,
    steps: int,
    *,
    executor: VirtualExecutor | None = None,
    true_deps: TrueDeps | None = None,
    record_deps: bool = False,
    check: Callable[[StepScheduler], None] | None = None,
) -> SimResult:
    """Run ``steps`` steps of a fresh ``world`` under ``mode`` (a name or a scheduler).

    ``record_deps`` keeps, per agent step, the agents it perceived: the true dependencies
    an ``oracle`` run replays. ``check`` is called with the scheduler after every unit.
    """
    t0 = time.perf_counter()
    executor = executor or VirtualExecutor()
    n = world.num_agents
    sched = scheduler_for(world, mode, steps, true_deps)
    hashes: list[list[str]] = [[""] * n for _ in range(steps)]
    deps: dict[tuple[int, int], tuple[int, ...]] | None = {} if record_deps else None
    heap: list[tuple[float, int, list[int], list[tuple[int, int, Observation]]]] = []
    now = busy = 0.0
    seq = calls = agent_steps = 0
    while True:
        for unit in sched.ready_units():
            sched.start(unit)
            longest = 0.0
            running = []
            for i in unit:
                s = sched.step_of(i)
                obs = world.observe(i, s)
                durations = executor.durations(world.plan(obs))
                chain = sum(durations)
                busy += chain
                calls += len(durations)
                longest = max(longest, chain)
                running.append((i, s, obs))
                if deps is not None:
                    deps[(i, s)] = obs.neighbor_ids
            heapq.heappush(heap, (now + longest, seq, unit, running))
            seq += 1
        if not heap:
            break
        now, _, unit, running = heapq.heappop(heap)
        for i, s, obs in running:
            world.apply(i, s, world.act(obs, None))
            hashes[s][i] = world.state_hash(i, s + 1)
        agent_steps += len(running)
        sched.finish(unit, [world.position(i, s + 1) for i, s, _ in running])
        if check is not None:
            check(sched)
    if not sched.done():
        raise RuntimeError(f"mode {sched.name!r} stalled before finishing {steps} steps")
    return SimResult(
        sched.name,
        n,
        steps,
        now,
        agent_steps,
        calls,
        busy,
        world_hash(hashes),
        time.perf_counter() - t0,
        deps,
    )


def run_modes(
    make_world: Callable[[], World],
    steps: int,
    modes: Iterable[str] = ("sync", "ooo", "oracle"),
    *,
    executor: VirtualExecutor | None = None,
) -> dict[str, SimResult]:
    """Run each mode on a fresh world; ``oracle`` replays the dependencies of a sync run
    (run first, whether asked for or not)."""
    modes = list(modes)
    for m in modes:
        if m not in MODES:
            raise ValueError(f"unknown mode {m!r}; choose from {', '.join(MODES)}")
    out: dict[str, SimResult] = {}
    need_deps = "oracle" in modes
    if "sync" in modes or need_deps:
        out["sync"] = simulate(
            make_world(), "sync", steps, executor=executor, record_deps=need_deps
        )
    for m in modes:
        if m == "sync":
            continue
        deps = out["sync"].true_deps if m == "oracle" else None
        out[m] = simulate(make_world(), m, steps, executor=executor, true_deps=deps)
    return {m: out[m] for m in modes}
