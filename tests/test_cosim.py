"""Co-simulation on sim-backend replicas: same world as the no-LLM driver, STE hints."""

from __future__ import annotations

import pytest

from agentrt.kvmanager.manager import KVCacheManager
from agentrt.scheduler.sim_modes import SyncScheduler
from agentrt.scheduler.spatial_tracker import SpatialTracker
from agentrt.simulation import TownScenario, TownWorld, simulate
from agentrt.simulation.cosim import CosimConfig, cosimulate
from agentrt.simulation.ste import steps_to_execution

SC = TownScenario(agents=12, seed=1, agents_per_tile=6, dynamics="dense")  # calls every step
STEPS = 5


@pytest.fixture(scope="module")
def baseline():
    return simulate(TownWorld(SC), "sync", STEPS, record_deps=True)


@pytest.mark.parametrize("mode", ["single", "sync", "ooo", "oracle"])
@pytest.mark.parametrize("replicas", [1, 3])
def test_world_hash_equals_no_llm_driver(baseline, mode, replicas):
    deps = baseline.true_deps if mode == "oracle" else None
    # strict causality checks hold for every mode but oracle (which knows the true deps)
    res = cosimulate(
        TownWorld(SC, strict=mode != "oracle"),
        mode,
        STEPS,
        CosimConfig(replicas=replicas),
        true_deps=deps,
    )
    assert res.world_hash == baseline.world_hash
    assert res.agent_steps == SC.agents * STEPS
    assert res.calls == baseline.calls
    assert res.makespan > 0 and res.parallelism > 0
    assert sum(res.extra["calls_per_replica"]) == res.calls
    if replicas == 3:
        assert all(c > 0 for c in res.extra["calls_per_replica"])


def test_modes_order_makespans(baseline):
    single = cosimulate(TownWorld(SC), "single", STEPS)
    sync = cosimulate(TownWorld(SC), "sync", STEPS)
    oracle = cosimulate(TownWorld(SC), "oracle", STEPS, true_deps=baseline.true_deps)
    # one call at a time cannot beat batching the whole step
    assert single.makespan > sync.makespan
    assert single.parallelism == pytest.approx(1.0)
    assert oracle.makespan <= sync.makespan * 1.001


def test_cosim_is_deterministic():
    a = cosimulate(TownWorld(SC), "ooo", STEPS, CosimConfig(replicas=2))
    b = cosimulate(TownWorld(SC), "ooo", STEPS, CosimConfig(replicas=2))
    assert (a.makespan, a.world_hash, a.calls) == (b.makespan, b.world_hash, b.calls)


def test_hints_published_to_owning_replica(monkeypatch, baseline):
    seen: list[dict[str, float]] = []
    original = KVCacheManager.update_hints

    def spy(self, agent_ste):
        seen.append(dict(agent_ste))
        original(self, agent_ste)

    monkeypatch.setattr(KVCacheManager, "update_hints", spy)
    cfg = CosimConfig(replicas=2, host_kv_cache_tokens=4096)
    assert cfg.eviction_policy == "kvflow"
    res = cosimulate(TownWorld(SC), "ooo", STEPS, cfg)
    assert res.world_hash == baseline.world_hash
    assert seen and res.extra["hint_updates"] == len(seen)
    agents = set().union(*seen)
    assert agents == {f"town/{i}" for i in range(SC.agents)}
    # each update covers one replica's agents only (the router splits them 6 / 6)
    assert max(len(h) for h in seen) <= SC.agents // 2
    assert any(v == 0 for h in seen for v in h.values())
    assert all(v >= 0 for h in seen for v in h.values())


def test_ste_rules_on_hand_made_positions():
    # R=1, V=1: agent 0 at (0,0), agent 1 at (2,0) within R+V: coupled; agent 2 far away
    t = SpatialTracker([(0, 0), (2, 0), (50, 50)], radius=1, speed=1, max_step=10)
    units = t.ready_units()
    assert sorted(map(sorted, units)) == [[0, 1], [2]]
    t.start([2])
    t.finish([2], [(50, 50)])
    t.start([2])
    t.finish([2], [(50, 50)])  # agent 2 at step 2: far, unblocked
    assert steps_to_execution(t, range(3), running=set(), max_step=10) == {0: 0, 1: 0, 2: 0}
    t.start([0, 1])
    ste = steps_to_execution(t, range(3), running={0, 1}, max_step=10)
    assert ste[0] == ste[1] == 0
    # move agent 2 near: (3,0) at step 2 vs agents 0, 1 at step 0 -> blocked by both
    t2 = SpatialTracker([(0, 0), (20, 0)], radius=1, speed=1, max_step=10)
    t2.start([1])
    t2.finish([1], [(19, 0)])  # 1 at step 1; agent 0 (step 0) 19 away: no block
    assert steps_to_execution(t2, [0, 1], set(), 10) == {0: 0, 1: 0}
    t3 = SpatialTracker([(0, 0), (4, 0)], radius=1, speed=1, max_step=10)
    t3.start([1])
    t3.finish([1], [(4, 0)])  # 1 at step 1, 0 at step 0: dist 4 <= 1 + 2*1? no -> free
    t3.start([1])
    t3.finish([1], [(3, 0)])  # 1 at step 2, dist 3 <= 1 + 3*1 -> blocked by agent 0
    assert t3.blockers(1) == {0}
    assert steps_to_execution(t3, [0, 1], set(), 10) == {0: 0, 1: 2.0}


def test_ste_sync_and_finished_agents():
    s = SyncScheduler(3, max_step=1)
    s.start([0])
    s.finish([0], [(0, 0)])  # agent 0 done with its only step: not published
    ste = steps_to_execution(s, range(3), running=set(), max_step=1)
    assert ste == {1: 0.0, 2: 0.0}
    s2 = SyncScheduler(2, max_step=3)
    s2.start([0])
    s2.finish([0], [(0, 0)])
    assert steps_to_execution(s2, [0, 1], running=set(), max_step=3) == {0: 1.0, 1: 0.0}


@pytest.mark.parametrize("mode", ["sync", "ooo"])
def test_fast_forward_keeps_the_timeline(mode):
    sc = TownScenario(agents=30, seed=2, dynamics="dense")
    slow = cosimulate(TownWorld(sc), mode, 4, CosimConfig(replicas=2, fast_forward=False))
    fast = cosimulate(TownWorld(sc), mode, 4, CosimConfig(replicas=2, fast_forward=True))
    assert slow.extra["fast_forward_steps"] == 0 < fast.extra["fast_forward_steps"]
    assert fast.makespan == slow.makespan  # identical float operations, not approximately
    assert fast.busy == slow.busy and fast.world_hash == slow.world_hash
    assert fast.extra["engine_steps"] == slow.extra["engine_steps"]
    assert fast.extra["prefix_hit_rate"] == slow.extra["prefix_hit_rate"]
