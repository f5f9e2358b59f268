"""The co-simulation with decode fast-forward (including the step in which calls finish)
and with implicit decodes (`LLMEngine.implicit_decodes`), alone and together, against
the step-by-step reference, call by call: every call is submitted at the same
virtual time, every agent step ends at the same time, and each replica ends with the
same clock, engine and KV statistics, batch sizes, free pages and prefix tree, under
eviction and preemption pressure, with and without a host tier."""

from __future__ import annotations

import pytest
from sim_helpers import sim_engine_state

from agentrt.simulation import TownScenario, TownWorld
from agentrt.simulation.cosim import CosimConfig, CosimEngines
from agentrt.simulation.unit_loop import UnitLoop, scheduler_for


class Recording(CosimEngines):
    """Records (virtual time, agent, step, call) of every submission and agent step end."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.log: list[tuple] = []

    def _submit(self, i: int) -> None:
        self.log.append(("call", self.now, i, self.active[i].step, self.next_call[i]))
        super()._submit(i)

    def _agent_done(self, i: int) -> None:
        self.log.append(("done", self.now, i, self.active[i].step))
        super()._agent_done(i)


def run(dynamics: str, cfg: CosimConfig, agents: int, steps: int) -> tuple[Recording, UnitLoop]:
    world = TownWorld(TownScenario(agents=agents, seed=3, dynamics=dynamics))
    sim = Recording(world.num_agents, scheduler_for(world, "ooo", steps), steps, cfg)
    loop = UnitLoop(world, sim.sched, steps)
    loop.run(sim)
    return sim, loop


def replica_state(sim: Recording) -> list[tuple]:
    return [sim_engine_state(e) for e in sim.engines]


CASES = [
    ("dense", dict(kv_cache_tokens=1_600), 40, 6),  # evictions and preemptions
    ("dense", dict(kv_cache_tokens=6_000, host_kv_cache_tokens=20_000), 40, 6),  # kvflow
    ("generative", dict(kv_cache_tokens=4_000), 120, 12),  # history calls, idle agents
]


FAST_PATHS = [(False, True), (True, True)]  # (fast_forward, implicit_decodes) vs neither


@pytest.mark.parametrize(("fast_forward", "implicit"), FAST_PATHS)
@pytest.mark.parametrize(("dynamics", "limits", "agents", "steps"), CASES)
def test_fast_paths_match_step_by_step(dynamics, limits, agents, steps, fast_forward, implicit):
    plain = CosimConfig(replicas=2, fast_forward=False, implicit_decodes=False, **limits)
    slow, slow_loop = run(dynamics, plain, agents, steps)
    cfg = CosimConfig(replicas=2, fast_forward=fast_forward, implicit_decodes=implicit, **limits)
    fast, fast_loop = run(dynamics, cfg, agents, steps)
    assert slow.fast_steps == 0
    assert (fast.fast_steps > 0) == fast_forward
    assert fast.log == slow.log
    assert (fast.now, fast.calls, fast.busy, fast_loop.hashes) == (
        slow.now,
        slow.calls,
        slow.busy,
        slow_loop.hashes,
    )
    for e in fast.engines:  # the running sequences' tokens catch up
        e.implicit_decodes = False
    assert replica_state(fast) == replica_state(slow)
    if limits["kv_cache_tokens"] < 2_000:
        assert sum(e.stats.preemptions for e in slow.engines) > 0  # the pressure is real
