"""Run a world under an execution mode on a virtual clock (no LLM, no wall time).

`VirtualClock` is the `UnitLoop` executor: a unit's agents run side by side, each
agent's calls one after another (durations from `VirtualExecutor`); the unit completes
with its slowest agent (ties: start order). Agents act with the world's fallback.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from agentrt.scheduler.sim_modes import StepScheduler, TrueDeps
from agentrt.simulation.mode_order import run_in_order
from agentrt.simulation.result import SimResult
from agentrt.simulation.unit_loop import Unit, UnitLoop
from agentrt.simulation.world import LLMCall, World


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


class VirtualClock:
    """`UnitExecutor` on a virtual clock: ``now`` is the last completion popped,
    ``busy`` sums call durations (so ``parallelism`` is mean calls in flight)."""

    def __init__(self, costs: VirtualExecutor) -> None:
        self.costs = costs
        self.heap: list[tuple[float, int, Unit]] = []
        self.seq = 0
        self.now = 0.0
        self.busy = 0.0
        self.calls = 0

    def start(self, unit: Unit) -> bool:
        longest = 0.0
        for st in unit.steps:
            durations = [self.costs.duration(c) for c in st.plan.calls]
            chain = sum(durations)
            self.busy += chain
            self.calls += len(durations)
            longest = max(longest, chain)
        heapq.heappush(self.heap, (self.now + longest, self.seq, unit))
        self.seq += 1
        return True

    def wait(self) -> list[Unit] | None:
        if not self.heap:
            return None
        self.now, _, unit = heapq.heappop(self.heap)
        return [unit]


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
    """Run ``steps`` steps of a fresh ``world`` under ``mode`` (a name or a scheduler);
    ``makespan`` is virtual seconds. ``record_deps``: keep the true dependencies an
    ``oracle`` run replays. ``check`` is called with the scheduler after every unit."""
    t0 = time.perf_counter()
    clock = VirtualClock(executor or VirtualExecutor())
    loop = UnitLoop(world, mode, steps, true_deps=true_deps, record_deps=record_deps, check=check)
    loop.run(clock)
    return loop.result(clock.now, clock.calls, clock.busy, time.perf_counter() - t0, {})


def run_modes(
    make_world: Callable[[], World],
    steps: int,
    modes: Iterable[str] = ("sync", "ooo", "oracle"),
    *,
    executor: VirtualExecutor | None = None,
) -> dict[str, SimResult]:
    """Run each mode on a fresh world, in the order of `run_in_order`; results keyed by
    mode, in ``modes`` order."""

    def one(mode: str, deps: TrueDeps | None, record: bool) -> SimResult:
        world = make_world()
        return simulate(world, mode, steps, executor=executor, true_deps=deps, record_deps=record)

    return run_in_order(modes, one)
