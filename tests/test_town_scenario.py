"""Scenario files: valid ones load, bad ones fail with a message naming file and field."""

from __future__ import annotations

import json

import pytest

from agentrt.simulation import ScenarioError, TownScenario, load_scenario

PLACES = [
    {"name": "home-a", "kind": "home", "x": 0, "y": 0, "w": 2, "h": 2},
    {"name": "cafe", "kind": "cafe", "x": 6, "y": 6, "w": 3, "h": 3},
]


def write(tmp_path, data, name="town.json"):
    path = tmp_path / name
    path.write_text(json.dumps(data) if name.endswith(".json") else data)
    return path


def test_minimal_file_uses_defaults(tmp_path):
    sc = load_scenario(write(tmp_path, {"agents": 100, "seed": 3}))
    assert (sc.agents, sc.seed, sc.radius, sc.speed) == (100, 3, 4.0, 1)
    assert sc.num_tiles == 4 and sc.tile_columns == 2


def test_yaml_with_explicit_residents(tmp_path):
    text = (
        "agents: 2\nwidth: 10\nheight: 10\nradius: 2\n"
        f"places: {json.dumps(PLACES)}\n"
        "residents:\n  - {name: Ann, home: home-a, work: cafe}\n  - {home: home-a, start: [9, 9]}\n"
    )
    sc = load_scenario(write(tmp_path, text, "town.yaml"))
    assert sc.per_tile == 2 and sc.residents[1].start == (9, 9)


@pytest.mark.parametrize(
    "data, message",
    [
        ({"radius": -1}, "radius: Input should be greater than or equal to 0"),
        ({"speed": 0}, "speed: Input should be greater than or equal to 1"),
        ({"agents": 0}, "agents: Input should be greater than or equal to 1"),
        ({"agnets": 5}, "agnets: Extra inputs are not permitted"),
        (
            {
                "width": 10,
                "height": 10,
                "places": PLACES,
                "residents": [{"home": "home-a", "work": "gym"}],
            },
            "unknown work place 'gym'",
        ),
        (
            {"width": 10, "height": 10, "places": PLACES, "residents": [{"home": "cafe"}]},
            "home 'cafe' is a cafe, not a home",
        ),
        (
            {
                "width": 10,
                "height": 10,
                "places": PLACES,
                "residents": [{"home": "home-a", "start": [10, 3]}],
            },
            "start (10, 3) is outside the 10x10 grid",
        ),
        (
            {"width": 8, "height": 8, "places": PLACES},
            "place 'cafe' (6,6 size 3x3) does not fit the 8x8 grid",
        ),
        ({"places": PLACES[1:]}, "at least one place of kind 'home'"),
        ({"places": PLACES + PLACES[:1]}, "duplicate place name 'home-a'"),
        ({"places": [{"name": "x", "kind": "zoo", "x": 0, "y": 0}]}, "places.0.kind"),
        ({"dynamics": "busy"}, "dynamics: Input should be 'generative' or 'dense'"),
        ({"talk_probability": 1.5}, "talk_probability: Input should be less than or equal to 1"),
        ({"layout": "huge"}, "layout: Input should be 'smallville' or 'compact'"),
        ({"steps_per_day": 0}, "steps_per_day: Input should be greater than or equal to 1"),
        (
            {"width": 40, "height": 40},
            "does not fit the 40x40 grid (a place of the smallville layout",
        ),
    ],
)
def test_bad_files_name_the_problem(tmp_path, data, message):
    path = write(tmp_path, data)
    with pytest.raises(ScenarioError) as err:
        load_scenario(path)
    assert str(path) in str(err.value)
    assert message in str(err.value)


def test_unreadable_and_malformed_files(tmp_path):
    with pytest.raises(ScenarioError, match="cannot read"):
        load_scenario(tmp_path / "missing.json")
    with pytest.raises(ScenarioError, match=r"\.json, \.yaml or \.yml"):
        load_scenario(write(tmp_path, "agents: 3", "town.toml"))
    bad = tmp_path / "bad.json"
    bad.write_text("{agents: 3")
    with pytest.raises(ScenarioError, match="not valid JSON"):
        load_scenario(bad)
    with pytest.raises(ScenarioError, match="mapping of fields"):
        load_scenario(write(tmp_path, "- 1\n- 2\n", "list.yaml"))


def test_dynamics_pick_their_defaults():
    gen, dense = TownScenario(), TownScenario(dynamics="dense")
    assert (gen.dynamics, gen.base_layout, gen.day_steps) == ("generative", "smallville", 8640)
    assert (gen.tile_width, gen.tile_height) == (140, 100)
    assert (dense.base_layout, dense.day_steps, dense.tile_width) == ("compact", 288, 40)
    custom = TownScenario(dynamics="dense", layout="smallville", steps_per_day=96)
    assert (custom.tile_width, custom.day_steps) == (140, 96)


def test_scenario_object_validates_too():
    with pytest.raises(ValueError, match="radius"):
        TownScenario(radius=-2)
