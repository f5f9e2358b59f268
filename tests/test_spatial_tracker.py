"""SpatialTracker: the AI Metropolis rules on hand-made positions, and random runs checked
against a brute-force recomputation after every operation."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentrt.scheduler.spatial_index import chebyshev
from agentrt.scheduler.spatial_tracker import SpatialTracker

# R = 2, V = 1: coupled within 3 at the same step; behind by k steps blocks within 3 + k.
R, V = 2.0, 1.0


def run(t: SpatialTracker, unit: list[int], moves: dict[int, tuple[float, float]] | None = None):
    """Start a ready unit and finish it, agents moving per ``moves`` (default: stay)."""
    assert unit in t.ready_units(), (unit, t.ready_units())
    t.start(unit)
    t.finish(unit, [(moves or {}).get(i, t.position(i)) for i in unit])
    t.check_integrity()


def test_far_agents_are_independent_units():
    t = SpatialTracker([(0, 0), (4, 0)], R, V, max_step=5)
    assert sorted(t.ready_units()) == [[0], [1]]  # 4 > R + V: not coupled


def test_coupling_within_r_plus_v_is_transitive():
    t = SpatialTracker([(0, 0), (3, 0), (6, 0), (10, 0)], R, V, max_step=5)
    assert t.ready_units() == [[0, 1, 2], [3]]
    t.check_integrity()


def test_conflict_blocks_the_agent_ahead_until_the_other_catches_up():
    t = SpatialTracker([(0, 0), (4, 0)], R, V, max_step=5)
    run(t, [0])  # agent 0 at step 1, agent 1 at step 0, distance 4 <= R + 2V
    assert t.blockers(0) == {1}
    assert t.ready_units() == [[1]]
    run(t, [1], {1: (5, 0)})  # same step now, 5 > R + V: both free
    assert sorted(t.ready_units()) == [[0], [1]]
    assert t.blockers(0) == set()


def test_conflict_boundary_is_inclusive():
    # one step behind: blocked within R + 2V = 4, free at 5; two behind: blocked within 5
    t = SpatialTracker([(0, 0), (5, 0)], R, V, max_step=5)
    run(t, [0])
    assert t.blockers(0) == set() and [0] in t.ready_units()
    run(t, [0])  # agent 0 at step 2, agent 1 at step 0: 5 <= R + 3V
    assert t.blockers(0) == {1}
    assert t.ready_units() == [[1]]


def test_behind_agent_moving_away_releases_early():
    t = SpatialTracker([(0, 0), (4, 0)], R, V, max_step=5)
    run(t, [0])  # blocked by 1 (distance 4, reach 4)
    run(t, [1], {1: (5, 0)})
    run(t, [1], {1: (6, 0)})  # 1 now ahead at step 2
    run(t, [0])  # 0 reaches step 2 too; 6 > 3: not coupled
    assert sorted(t.ready_units()) == [[0], [1]]


def test_run_ahead_when_far():
    t = SpatialTracker([(0, 0), (1, 0), (100, 0)], R, V, max_step=10)
    for _ in range(10):
        run(t, [2])  # the far agent runs all its steps while the pair has not started
    assert t.step_of(2) == 10 and t.step_of(0) == 0
    assert t.ready_units() == [[0, 1]]


def test_moving_towards_a_waiting_agent_merges_clusters():
    t = SpatialTracker([(0, 0), (4, 0)], R, V, max_step=5)
    run(t, [0])
    run(t, [1], {1: (3, 0)})  # arrives at step 1 within R + V of agent 0: coupled
    assert t.ready_units() == [[0, 1]]


def test_finished_agents_block_nobody():
    t = SpatialTracker([(0, 0), (1, 0)], R, V, max_step=1)
    run(t, [0, 1])
    assert t.done() and t.ready_units() == []


def test_errors():
    with pytest.raises(ValueError, match="radius"):
        SpatialTracker([(0, 0)], -1, V, max_step=1)
    t = SpatialTracker([(0, 0), (1, 0), (10, 0)], R, V, max_step=3)
    with pytest.raises(ValueError, match="not a ready unit"):
        t.start([0])  # half of a coupled cluster
    with pytest.raises(ValueError, match="not a ready unit"):
        t.start([0, 0])
    with pytest.raises(ValueError, match="not running"):
        t.finish([2], [(10, 0)])
    t.start([2])
    with pytest.raises(ValueError, match="moved"):
        t.finish([2], [(12, 0)])


def test_no_quadratic_scan_of_far_agents():
    """Agents spread on a line far apart: each arrival finds no blockers without
    comparing against everyone (the grid visits only occupied nearby cells)."""
    n = 400
    t = SpatialTracker([(10.0 * i, 0.0) for i in range(n)], R, V, max_step=3)
    assert len(t.ready_units()) == n
    for unit in t.ready_units():
        t.start(unit)
        t.finish(unit, [t.position(unit[0])])
    assert len(t.ready_units()) == n


@st.composite
def scenarios(draw):
    n = draw(st.integers(1, 10))
    pos = [(draw(st.integers(0, 14)), draw(st.integers(0, 14))) for _ in range(n)]
    radius = draw(st.sampled_from([0, 1, 2, 3]))
    speed = draw(st.sampled_from([0, 1, 2]))
    return pos, radius, speed, draw(st.integers(1, 5))


@settings(max_examples=200, deadline=None)
@given(sc=scenarios(), data=st.data())
def test_random_runs_keep_integrity_and_never_read_too_early(sc, data):
    positions, radius, speed, max_step = sc
    t = SpatialTracker(positions, radius, speed, max_step)
    t.check_integrity()
    running: list[list[int]] = []
    while not t.done():
        ready = t.ready_units()
        assert ready or running, "deadlock: nothing ready and nothing running"
        if ready and (not running or data.draw(st.booleans())):
            unit = data.draw(st.sampled_from(ready))
            for i in unit:  # the minimal causality rule, checked directly
                for j in range(len(positions)):
                    a, b = t.step_of(i), t.step_of(j)
                    if b < a:
                        gap = chebyshev(t.position(i), t.position(j))
                        assert gap > radius + (a - b) * speed
            t.start(unit)
            running.append(unit)
        else:
            unit = running.pop(data.draw(st.integers(0, len(running) - 1)))
            moves = []
            for i in unit:
                x, y = t.position(i)
                dx = data.draw(st.integers(-speed, speed))
                dy = data.draw(st.integers(-speed, speed))
                moves.append((x + dx, y + dy))
            t.finish(unit, moves)
        t.check_integrity()
    assert all(t.step_of(i) == max_step for i in range(len(positions)))
