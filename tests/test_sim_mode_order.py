"""The one place that orders a comparison's modes (`mode_order`, `run_in_order`), used by
`run_modes` (virtual clock) and `run_simulation` (engines), and the loop's stall check."""

from __future__ import annotations

import pytest

from agentrt.scheduler.sim_modes import SyncScheduler
from agentrt.simulation import TownScenario, TownWorld, run_modes, simulate
from agentrt.simulation.mode_order import mode_order, run_in_order
from agentrt.simulation.result import SimResult
from agentrt.simulation.runner import run_simulation

SC = TownScenario(agents=12, seed=2, agents_per_tile=12, layout="compact", dynamics="dense")


@pytest.mark.parametrize(
    ("modes", "order"),
    [
        (["ooo"], ["ooo"]),
        (["oracle"], ["sync", "oracle"]),
        (["ooo", "oracle", "sync"], ["sync", "ooo", "oracle"]),
        (["single", "ooo", "single"], ["single", "ooo"]),
        (["ooo", "sync"], ["sync", "ooo"]),
    ],
)
def test_mode_order(modes, order):
    assert mode_order(modes) == order


def test_unknown_mode_is_refused_before_anything_runs():
    ran: list[str] = []

    def one(mode, deps, record):
        ran.append(mode)
        return simulate(TownWorld(SC), mode, 2, true_deps=deps, record_deps=record)

    with pytest.raises(ValueError, match="unknown mode 'fast'"):
        run_in_order(["sync", "fast"], one)
    assert ran == []


def test_run_in_order_hands_sync_deps_to_oracle_only_when_asked():
    calls: list[tuple[str, object, bool]] = []

    def one(mode, deps, record):
        calls.append((mode, deps, record))
        res = simulate(TownWorld(SC), mode, 4, true_deps=deps, record_deps=record)
        assert (res.true_deps is not None) == record
        return res

    out = run_in_order(["oracle", "ooo"], one)
    assert list(out) == ["oracle", "ooo"]  # the sync run only oracle needed is left out
    assert [(m, r) for m, _, r in calls] == [("sync", True), ("oracle", False), ("ooo", False)]
    assert calls[1][1] is not None and calls[2][1] is None
    calls.clear()
    run_in_order(["ooo", "sync"], one)
    assert [(m, d, r) for m, d, r in calls] == [("sync", None, False), ("ooo", None, False)]


def test_virtual_and_engine_comparisons_run_the_same_order():
    virtual = run_modes(lambda: TownWorld(SC), 5, ["oracle", "ooo"])
    engines = run_simulation(lambda: TownWorld(SC), 5, ["oracle", "ooo"], backend="sim")
    assert list(virtual) == list(engines) == ["oracle", "ooo"]
    hashes = {r.world_hash for r in [*virtual.values(), *engines.values()]}
    assert len(hashes) == 1
    assert all(isinstance(r, SimResult) for r in engines.values())


class StallingSync(SyncScheduler):
    """Offers nothing after step 2: the loop runs dry before the last step."""

    def ready_units(self) -> list[list[int]]:
        return [] if self._step >= 2 else super().ready_units()


def test_a_stalled_schedule_is_an_error():
    with pytest.raises(RuntimeError, match="stalled before finishing 5 steps"):
        simulate(TownWorld(SC), StallingSync(SC.agents, 5), 5)
