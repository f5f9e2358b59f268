"""The town world: determinism, tiling, routines; the dense dynamics' talk/walk rules and
their plans (the generative dynamics: ``test_town_generative.py``)."""

from __future__ import annotations

import pytest

from agentrt.scheduler.spatial_index import chebyshev
from agentrt.simulation import Action, TownScenario, TownWorld, simulate

PLACES = [
    {"name": "home-a", "kind": "home", "x": 0, "y": 0, "w": 2, "h": 2},
    {"name": "home-b", "kind": "home", "x": 18, "y": 0, "w": 2, "h": 2},
    {"name": "cafe", "kind": "cafe", "x": 8, "y": 8, "w": 3, "h": 3},
]


def small_town(**kw) -> TownScenario:
    residents = [
        {"name": "Ann Lee", "home": "home-a", "work": "cafe", "start": (0, 0)},
        {"name": "Bo Diaz", "home": "home-a", "work": "cafe", "start": (2, 0)},
        {"name": "Cy Park", "home": "home-b", "work": None, "start": (19, 0)},
    ]
    args = dict(
        width=20,
        height=20,
        places=PLACES,
        residents=residents,
        radius=3,
        agents=3,
        dynamics="dense",
    )
    return TownScenario(**(args | kw))


def test_same_seed_same_town_and_history():
    a, b = TownWorld(TownScenario(agents=40, seed=5)), TownWorld(TownScenario(agents=40, seed=5))
    assert a.residents == b.residents
    assert simulate(a, "sync", 30).world_hash == simulate(b, "sync", 30).world_hash
    c = TownWorld(TownScenario(agents=40, seed=6))
    assert [r.persona for r in c.residents] != [r.persona for r in a.residents]
    assert (
        simulate(c, "sync", 30).world_hash != simulate(TownWorld(a.scenario), "sync", 30).world_hash
    )


@pytest.mark.parametrize("layout, size", [("compact", (280, 240)), ("smallville", (980, 600))])
def test_tiling_to_a_thousand_agents(layout, size):
    sc = TownScenario(agents=1000, seed=1, layout=layout)
    world = TownWorld(sc)
    assert sc.num_tiles == 40 and sc.tile_columns == 7
    assert (world.width, world.height) == size
    assert len(world.places) == 40 * len(sc.place_specs)
    assert len({r.name for r in world.residents}) == 1000
    by_name = {p.name: p for p in world.places}
    for r in world.residents:
        assert r.tile == r.agent // 25
        home = by_name[r.home]
        assert r.home.endswith(f"#{r.tile}")
        assert home.x <= r.start[0] < home.x + home.w and home.y <= r.start[1] < home.y + home.h
        for _, place in r.routine:
            assert place.endswith(f"#{r.tile}")  # residents live their day in their own tile
    # density: same agents per cell as the base town
    tile = sc.tile_width * sc.tile_height
    assert 1000 / (world.width * world.height) == pytest.approx(25 / tile, rel=0.2)


def test_personas_are_fixed_prefixes_and_can_be_padded():
    world = TownWorld(TownScenario(agents=5, persona_words=300))
    r = world.residents[0]
    assert r.persona.startswith(f"You are {r.name}, a ")
    assert len(r.persona.split()) >= 300
    obs = world.observe(0, 0)
    assert world.plan(obs).prefix == r.persona


def test_walk_towards_routine_at_most_speed_per_step():
    world = TownWorld(small_town(speed=2, start_hour=12.5))
    cy = world.residents[2]
    before = world.position(2, 0)
    obs = world.observe(2, 0)
    assert obs.neighbors == ()
    action = world.act(obs)
    assert action.talk_to is None and chebyshev(before, action.move_to) == 2
    assert action.activity == f"walking to {cy.target(world.hour(0))}"


def test_talk_when_meeting_a_free_agent_and_plan_a_converse_call():
    world = TownWorld(small_town())
    obs = world.observe(0, 0)
    assert obs.neighbor_ids == (1,)
    plan = world.plan(obs)
    assert [c.kind for c in plan.calls] == ["perceive", "decide", "converse"]
    assert "Bo Diaz" in plan.calls[0].text and "Bo Diaz" in plan.calls[2].text
    action = world.act(obs)
    assert action.talk_to == 1 and action.move_to == (0, 0)
    world.apply(0, 0, action)
    st = world.state(0, 1)
    assert st.cooldown > 0 and st.talk_to == 1 and "Bo" in st.said
    # busy now: no conversation at the next step, no converse call
    world.apply(1, 0, world.act(world.observe(1, 0)))
    obs1 = world.observe(0, 1)
    assert [c.kind for c in world.plan(obs1).calls] == ["perceive", "decide"]
    assert world.act(obs1).talk_to is None


def test_llm_outputs_set_words_and_activity_not_movement():
    world = TownWorld(small_town())
    obs = world.observe(0, 0)
    action = world.act(obs, ["I see Bo.", "Chat with Bo\nthen coffee", "Morning, Bo!"])
    assert action.activity == "Chat with Bo" and action.said == "Morning, Bo!"
    assert action.move_to == world.act(obs).move_to


def test_apply_rejects_illegal_actions():
    world = TownWorld(small_town())
    with pytest.raises(ValueError, match="cannot move"):
        world.apply(2, 0, Action((15, 0), "teleporting"))
    with pytest.raises(ValueError, match="leave the grid"):
        world.apply(0, 0, Action((-1, 0), "falling off"))
    world.apply(2, 0, world.act(world.observe(2, 0)))
    with pytest.raises(ValueError, match="at step 1"):
        world.apply(2, 0, world.act(world.observe(2, 0)))


def test_town_has_real_interactions():
    """The equivalence tests would be vacuous without conversations and meetings."""
    world = TownWorld(TownScenario(agents=50, seed=2, dynamics="dense"))
    result = simulate(world, "sync", 60, record_deps=True)
    talks = sum(world.state(i, s).talk_to >= 0 for i in range(50) for s in range(1, 61))
    assert talks >= 20
    assert sum(1 for d in result.true_deps.values() if d) >= 100
