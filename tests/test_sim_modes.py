"""single / sync / oracle schedulers and make_scheduler; the simulation packages stay
torch-free."""

from __future__ import annotations

import subprocess
import sys

import pytest

from agentrt.scheduler.sim_modes import (
    OracleScheduler,
    SingleScheduler,
    SyncScheduler,
    make_scheduler,
)
from agentrt.scheduler.spatial_tracker import SpatialTracker

P = (0.0, 0.0)


def finish(s, unit):
    s.start(unit)
    s.finish(unit, [P] * len(unit))


def test_sync_barrier():
    s = SyncScheduler(3, max_step=2)
    assert s.ready_units() == [[0], [1], [2]]
    finish(s, [0])
    finish(s, [1])
    assert s.ready_units() == [[2]]  # agents 0 and 1 wait at the barrier
    finish(s, [2])
    assert s.ready_units() == [[0], [1], [2]] and s.step_of(0) == 1
    for i in range(3):
        finish(s, [i])
    assert s.done() and s.ready_units() == []


def test_single_runs_one_agent_step_at_a_time_in_order():
    s = SingleScheduler(2, max_step=2)
    order = []
    while not s.done():
        (unit,) = s.ready_units()
        s.start(unit)
        assert s.ready_units() == []
        order.append((unit[0], s.step_of(unit[0])))
        s.finish(unit, [P])
    assert order == [(0, 0), (1, 0), (0, 1), (1, 1)]


def test_oracle_releases_on_true_dependencies_only():
    # agent 1 perceived agent 0 at step 1; agent 2 perceived nobody
    s = OracleScheduler(3, max_step=2, deps={(1, 1): (0,)})
    assert s.ready_units() == [[0], [1], [2]]
    finish(s, [1])
    finish(s, [2])
    assert s.ready_units() == [[0], [2]]  # (1, 1) waits for (0, 0); (2, 1) does not
    finish(s, [0])
    assert sorted(s.ready_units()) == [[0], [1], [2]]
    with pytest.raises(ValueError, match="not a ready unit"):
        s.start([0, 1])


def test_make_scheduler():
    pos = [P, (9.0, 9.0)]
    assert isinstance(make_scheduler("ooo", pos, radius=1, speed=1, max_step=3), SpatialTracker)
    assert make_scheduler("sync", pos, radius=1, speed=1, max_step=3).name == "sync"
    with pytest.raises(ValueError, match="true dependencies"):
        make_scheduler("oracle", pos, radius=1, speed=1, max_step=3)
    with pytest.raises(ValueError, match="unknown mode 'fast'"):
        make_scheduler("fast", pos, radius=1, speed=1, max_step=3)


def test_simulation_imports_no_torch():
    code = (
        "import sys, agentrt.simulation, agentrt.scheduler.sim_modes;"
        "assert 'torch' not in sys.modules, 'torch was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
