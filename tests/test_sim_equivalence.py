"""Out-of-order execution does not change the simulation: sync, ooo, oracle and single
produce the identical world history hash; a schedule that ignores the rules does not."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentrt.scheduler.spatial_index import Pos
from agentrt.simulation import CausalityError, TownScenario, TownWorld, run_modes, simulate


def hashes_agree(sc: TownScenario, steps: int, modes=("sync", "ooo", "oracle")) -> dict:
    results = run_modes(lambda: TownWorld(sc), steps, modes)
    strict = simulate(TownWorld(sc, strict=True), "ooo", steps)  # raises on an early read
    assert {r.world_hash for r in results.values()} == {strict.world_hash}, {
        m: r.world_hash for m, r in results.items()
    }
    return results


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("agents", [3, 25, 60])
@pytest.mark.parametrize("dynamics", ["generative", "dense"])
def test_modes_agree_on_small_towns(agents, seed, dynamics):
    sc = TownScenario(agents=agents, seed=seed, dynamics=dynamics, layout="compact")
    res = hashes_agree(sc, 40, MODES_ALL)
    assert len(res) == len(MODES_ALL)
    eps = 1e-9
    sync, ooo, oracle, single = (res[m].makespan for m in MODES_ALL)
    assert oracle <= ooo * (1 + eps) and ooo <= sync * (1 + eps) and sync <= single
    assert len({(r.calls, r.agent_steps) for r in res.values()}) == 1


MODES_ALL = ("sync", "ooo", "oracle", "single")


@pytest.mark.parametrize("seed", [0, 7])
@pytest.mark.parametrize("dynamics", ["generative", "dense"])
def test_modes_agree_on_a_medium_town(seed, dynamics):
    sc = TownScenario(agents=250, seed=seed, agents_per_tile=40, start_hour=8.0, dynamics=dynamics)
    res = run_modes(lambda: TownWorld(sc), 30)
    assert res["sync"].world_hash == res["ooo"].world_hash == res["oracle"].world_hash
    # and the order really differed: ooo started steps before the barrier would have
    assert res["oracle"].makespan <= res["ooo"].makespan < res["sync"].makespan


@settings(max_examples=25, deadline=None)
@given(
    agents=st.integers(2, 40),
    per_tile=st.integers(3, 30),
    radius=st.sampled_from([0.0, 1.0, 2.0, 4.0, 6.0]),
    speed=st.integers(1, 3),
    seed=st.integers(0, 10_000),
    start_hour=st.sampled_from([6.0, 8.5, 12.0, 17.0, 23.0]),
    steps=st.integers(1, 25),
    dynamics=st.sampled_from(["generative", "dense"]),
    talk=st.sampled_from([0.5, 1.0]),
    per_day=st.sampled_from([288, 8640]),  # coarse steps cross wake-ups and actions
)
def test_modes_agree_on_random_towns(
    agents, per_tile, radius, speed, seed, start_hour, steps, dynamics, talk, per_day
):
    sc = TownScenario(
        dynamics=dynamics,
        talk_probability=talk,
        steps_per_day=per_day,
        agents=agents,
        agents_per_tile=per_tile,
        radius=radius,
        speed=speed,
        seed=seed,
        start_hour=start_hour,
        width=20,
        height=20,
        places=[
            {"name": "home", "kind": "home", "x": 1, "y": 1, "w": 4, "h": 4},
            {"name": "cafe", "kind": "cafe", "x": 12, "y": 3, "w": 4, "h": 3},
            {"name": "park", "kind": "park", "x": 6, "y": 12, "w": 6, "h": 6},
        ],
    )
    hashes_agree(sc, steps)


def test_tracker_integrity_holds_through_a_town_run():
    sc = TownScenario(agents=30, seed=4, agents_per_tile=15, layout="compact", start_hour=12.0)
    simulate(TownWorld(sc), "ooo", 25, check=lambda sched: sched.check_integrity())


class FreeScheduler:
    """Ignores other agents: every agent runs its steps as fast as it can (wrong)."""

    name = "free"

    def __init__(self, n: int, max_step: int) -> None:
        self.steps, self.max_step, self.running = [0] * n, max_step, set()

    def ready_units(self) -> list[list[int]]:
        return [
            [i] for i, s in enumerate(self.steps) if s < self.max_step and i not in self.running
        ]

    def start(self, unit: Sequence[int]) -> None:
        self.running.update(unit)

    def finish(self, unit: Sequence[int], new_positions: Sequence[Pos]) -> None:
        for i in unit:
            self.running.discard(i)
            self.steps[i] += 1

    def step_of(self, agent: int) -> int:
        return self.steps[agent]

    def done(self) -> bool:
        return all(s == self.max_step for s in self.steps)


def test_ignoring_the_rules_changes_the_history_and_strict_worlds_catch_it():
    sc = TownScenario(agents=25, seed=0)
    good = simulate(TownWorld(sc), "sync", 40).world_hash
    bad = simulate(TownWorld(sc), FreeScheduler(25, 40), 40).world_hash
    assert bad != good
    with pytest.raises(CausalityError, match="could come within radius"):
        simulate(TownWorld(sc, strict=True), FreeScheduler(25, 40), 40)
