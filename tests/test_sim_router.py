"""Router: sticky agent affinity, balanced assignment, optional moves under skew."""

from __future__ import annotations

import pytest

from agentrt.simulation.router import Router


def test_agents_spread_evenly_and_stay_put():
    r = Router(3)
    first = [r.route(f"a{i}") for i in range(9)]
    assert sorted(r.assigned) == [3, 3, 3]
    assert first == [0, 1, 2, 0, 1, 2, 0, 1, 2]
    for i in range(9):
        r.done(first[i])
    # later calls of the same agent go where its prefix lives, whatever the load
    for _ in range(3):
        assert [r.route(f"a{i}") for i in range(9)] == first
    assert r.owner("a4") == 1 and r.owner("nobody") is None
    assert sorted(r.agents_of(2)) == ["a2", "a5", "a8"]


def test_new_agent_prefers_fewest_agents_then_fewest_inflight():
    r = Router(2)
    r.route("x")  # replica 0 now has 1 agent, 1 call in flight
    assert r.route("y") == 1
    r.route("y")  # replica 1: 1 agent, 2 calls in flight
    assert r.route("z") == 0  # tie on agents (1 each): fewer calls in flight wins


def test_moves_only_when_enabled_and_skewed():
    sticky = Router(2)
    sticky.assign("hot")
    for _ in range(50):
        assert sticky.route("hot") == 0
    assert sticky.moves == 0

    r = Router(2, move_factor=2.0, move_slack=4)
    r.assign("hot")
    r.assign("cold")
    routed = [r.route("hot") for _ in range(6)]
    assert routed[:5] == [0] * 5  # 5 in flight on 0 vs 0 on 1: 5 > 2 * 0 + 4 -> move
    assert routed[5] == 1 and r.moves == 1 and r.owner("hot") == 1
    assert r.assigned == [0, 2]


def test_bad_arguments():
    with pytest.raises(ValueError):
        Router(0)
    with pytest.raises(ValueError):
        Router(2, move_factor=0.5)
    with pytest.raises(ValueError):
        Router(1).done(0)
