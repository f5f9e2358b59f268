"""Town scenarios: a base town (grid + named places + optional residents), tiled to N agents.

A scenario file is JSON or YAML holding a `TownScenario`; everything has a default, so
``{"agents": 100, "seed": 3}`` is a complete file. Larger towns repeat the base town
(``agents_per_tile`` residents each) on a near-square layout of tiles, so density stays
the same at any N. Bad files raise `ScenarioError` naming the file and the field.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

PlaceKind = Literal["home", "cafe", "park", "library", "market", "school", "office", "bar"]


class ScenarioError(ValueError):
    """A scenario file or object is invalid."""


class PlaceSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    name: str = Field(min_length=1)
    kind: PlaceKind
    x: int = Field(ge=0)
    y: int = Field(ge=0)
    w: int = Field(1, ge=1)
    h: int = Field(1, ge=1)


class ResidentSpec(BaseModel):
    """One resident of the base town; unset fields are generated from the seed."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    name: str | None = None
    home: str
    work: str | None = None  # a place name; None: retired (no workplace)
    start: tuple[int, int] | None = None  # default: a cell of the home


def _default_places(sx: float = 1.0, sy: float = 1.0) -> list[PlaceSpec]:
    """The base town plan on a 40 x 40 grid, scaled by (``sx``, ``sy``)."""
    homes = [
        ("home-" + str(k + 1 + 5 * row), "home", 2 + 7 * k, y, 3, 3)
        for row, y in enumerate((1, 36))
        for k in range(5)
    ]
    others = [
        ("cafe", "cafe", 4, 10, 6, 5),
        ("library", "library", 16, 10, 6, 5),
        ("school", "school", 28, 10, 7, 6),
        ("park", "park", 14, 18, 10, 8),
        ("market", "market", 3, 27, 7, 5),
        ("office", "office", 28, 24, 7, 5),
        ("bar", "bar", 17, 29, 4, 4),
    ]
    return [
        PlaceSpec(name=n, kind=k, x=int(x * sx), y=int(y * sy), w=int(w * sx), h=int(h * sy))
        for n, k, x, y, w, h in homes + others
    ]


Layout = Literal["smallville", "compact"]

#: Base tiles of 25 residents: ``compact``, the town's 40 x 40 plan; ``smallville``, the
#: same plan stretched to the 140 x 100 of Generative Agents' "the Ville" map.
LAYOUTS: dict[str, tuple[int, int, float, float]] = {
    "compact": (40, 40, 1.0, 1.0),
    "smallville": (140, 100, 3.5, 2.5),
}


Dynamics = Literal["generative", "dense"]

#: Steps per simulated day when ``steps_per_day`` is not given: Generative Agents runs
#: 10 game seconds per step (8,640 a day); the dense town used 5-minute steps.
DEFAULT_STEPS_PER_DAY: dict[str, int] = {"generative": 8640, "dense": 288}


class TownScenario(BaseModel):
    """A town and how to run it. Distances in cells (Chebyshev), time in steps.
    ``dynamics``: see `agentrt.simulation.town`. ``talk_probability`` (generative): the
    chance that an agent decides to talk to a newly perceived free agent (seeded)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    name: str = "town"
    dynamics: Dynamics = "generative"
    talk_probability: float = Field(0.5, ge=0, le=1)
    agents: int = Field(25, ge=1, le=100_000)
    seed: int = 0
    radius: float = Field(4.0, ge=0)
    speed: int = Field(1, ge=1)
    steps: int = Field(96, ge=1)
    steps_per_day: int | None = Field(None, ge=1)  # None: DEFAULT_STEPS_PER_DAY[dynamics]
    start_hour: float = Field(7.0, ge=0, lt=24)
    persona_words: int = Field(0, ge=0, le=20_000)  # pad personas with a generated bio
    layout: Layout | None = None  # None: smallville (generative) or compact (dense)
    width: int | None = Field(None, ge=1)  # None: the layout's
    height: int | None = Field(None, ge=1)
    places: list[PlaceSpec] | None = None  # None: the layout's plan
    residents: list[ResidentSpec] | None = None
    agents_per_tile: int | None = Field(None, ge=1)

    @model_validator(mode="after")
    def _check(self) -> TownScenario:
        names: set[str] = set()
        width, height = self.tile_width, self.tile_height
        for p in self.place_specs:
            if p.name in names:
                raise ValueError(f"duplicate place name {p.name!r}")
            names.add(p.name)
            if p.x + p.w > width or p.y + p.h > height:
                hint = ""
                if self.places is None:
                    hint = f" (a place of the {self.base_layout} layout: give places or a layout)"
                raise ValueError(
                    f"place {p.name!r} ({p.x},{p.y} size {p.w}x{p.h}) does not fit the "
                    f"{width}x{height} grid{hint}"
                )
        if not any(p.kind == "home" for p in self.place_specs):
            raise ValueError("the town needs at least one place of kind 'home'")
        kinds = {p.name: p.kind for p in self.place_specs}
        for k, r in enumerate(self.residents or ()):
            for what, place in (("home", r.home), ("work", r.work)):
                if place is not None and place not in kinds:
                    raise ValueError(
                        f"resident {k} ({r.name or 'unnamed'}): unknown {what} place {place!r}; "
                        f"places are {sorted(kinds)}"
                    )
            if kinds[r.home] != "home":
                raise ValueError(f"resident {k}: home {r.home!r} is a {kinds[r.home]}, not a home")
            if r.start is not None:
                x, y = r.start
                if not (0 <= x < width and 0 <= y < height):
                    raise ValueError(
                        f"resident {k}: start {r.start} is outside the {width}x{height} grid"
                    )
        if self.residents is not None and not self.residents:
            raise ValueError("residents, when given, must not be empty")
        return self

    @property
    def base_layout(self) -> str:
        """The layout in use: ``layout`` or the dynamics' default."""
        return self.layout or ("smallville" if self.dynamics == "generative" else "compact")

    @property
    def tile_width(self) -> int:
        return self.width or LAYOUTS[self.base_layout][0]

    @property
    def tile_height(self) -> int:
        return self.height or LAYOUTS[self.base_layout][1]

    @property
    def place_specs(self) -> list[PlaceSpec]:
        """The places of one tile (``places`` or the layout's plan)."""
        if self.places is not None:
            return self.places
        _, _, sx, sy = LAYOUTS[self.base_layout]
        return _default_places(sx, sy)

    @property
    def day_steps(self) -> int:
        """Steps per simulated day (``steps_per_day`` or the dynamics' default)."""
        return self.steps_per_day or DEFAULT_STEPS_PER_DAY[self.dynamics]

    @property
    def per_tile(self) -> int:
        if self.agents_per_tile is not None:
            return self.agents_per_tile
        return len(self.residents) if self.residents else 25

    @property
    def num_tiles(self) -> int:
        return -(-self.agents // self.per_tile)

    @property
    def tile_columns(self) -> int:
        return math.isqrt(self.num_tiles - 1) + 1  # the smallest square layout that holds them


def scenario_from_dict(data: object, source: str = "scenario") -> TownScenario:
    try:
        return TownScenario.model_validate(data)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"]) or "(top level)"
            lines.append(f"  {where}: {err['msg']}")
        raise ScenarioError(f"{source}: invalid scenario\n" + "\n".join(lines)) from None


def load_scenario(path: str | Path) -> TownScenario:
    """Read a JSON (.json) or YAML (.yaml/.yml) scenario file."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".json", ".yaml", ".yml"):
        raise ScenarioError(f"{path}: scenario files are .json, .yaml or .yml")
    try:
        text = path.read_text()
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        data = json.loads(text) if suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise ScenarioError(f"{path}: not valid {suffix[1:].upper()}: {exc}") from None
    if not isinstance(data, dict):
        raise ScenarioError(f"{path}: a scenario is a mapping of fields, got {type(data).__name__}")
    return scenario_from_dict(data, str(path))
