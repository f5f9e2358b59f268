"""Town scenarios: a base town (grid + named places + optional residents), tiled to N agents.

A scenario file is JSON or YAML holding a `TownScenario`; everything has a default, so
``{"agents": 100, "seed": 3}`` is a complete file. Larger towns repeat the base town
(``agents_per_tile`` residents each) on a near-square layout of tiles, so density stays
the same at any N. Bad files raise `ScenarioError` naming the file and the field.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

PlaceKind = Literal["home", "cafe", "park", "library", "market", "school", "office", "bar"]


class ScenarioError(ValueError):
    """A scenario file or object is invalid."""


class PlaceSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    kind: PlaceKind
    x: int = Field(ge=0)
    y: int = Field(ge=0)
    w: int = Field(1, ge=1)
    h: int = Field(1, ge=1)


class ResidentSpec(BaseModel):
    """One resident of the base town; unset fields are generated from the seed."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    home: str
    work: str | None = None  # a place name; None: retired (no workplace)
    start: tuple[int, int] | None = None  # default: a cell of the home


def _default_places() -> list[PlaceSpec]:
    homes = [
        PlaceSpec(name=f"home-{k + 1 + 5 * row}", kind="home", x=2 + 7 * k, y=y, w=3, h=3)
        for row, y in enumerate((1, 36))
        for k in range(5)
    ]
    return homes + [
        PlaceSpec(name="cafe", kind="cafe", x=4, y=10, w=6, h=5),
        PlaceSpec(name="library", kind="library", x=16, y=10, w=6, h=5),
        PlaceSpec(name="school", kind="school", x=28, y=10, w=7, h=6),
        PlaceSpec(name="park", kind="park", x=14, y=18, w=10, h=8),
        PlaceSpec(name="market", kind="market", x=3, y=27, w=7, h=5),
        PlaceSpec(name="office", kind="office", x=28, y=24, w=7, h=5),
        PlaceSpec(name="bar", kind="bar", x=17, y=29, w=4, h=4),
    ]


class TownScenario(BaseModel):
    """A town and how to run it. Distances in cells (Chebyshev), time in steps."""

    model_config = ConfigDict(extra="forbid")

    name: str = "town"
    agents: int = Field(25, ge=1, le=100_000)
    seed: int = 0
    radius: float = Field(4.0, ge=0)
    speed: int = Field(1, ge=1)
    steps: int = Field(96, ge=1)
    steps_per_day: int = Field(288, ge=1)
    start_hour: float = Field(7.0, ge=0, lt=24)
    persona_words: int = Field(0, ge=0, le=20_000)  # pad personas with a generated bio
    width: int = Field(40, ge=1)
    height: int = Field(40, ge=1)
    places: list[PlaceSpec] = Field(default_factory=_default_places)
    residents: list[ResidentSpec] | None = None
    agents_per_tile: int | None = Field(None, ge=1)

    @model_validator(mode="after")
    def _check(self) -> TownScenario:
        names: set[str] = set()
        for p in self.places:
            if p.name in names:
                raise ValueError(f"duplicate place name {p.name!r}")
            names.add(p.name)
            if p.x + p.w > self.width or p.y + p.h > self.height:
                raise ValueError(
                    f"place {p.name!r} ({p.x},{p.y} size {p.w}x{p.h}) does not fit the "
                    f"{self.width}x{self.height} grid"
                )
        if not any(p.kind == "home" for p in self.places):
            raise ValueError("the town needs at least one place of kind 'home'")
        kinds = {p.name: p.kind for p in self.places}
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
                if not (0 <= x < self.width and 0 <= y < self.height):
                    raise ValueError(
                        f"resident {k}: start {r.start} is outside the "
                        f"{self.width}x{self.height} grid"
                    )
        if self.residents is not None and not self.residents:
            raise ValueError("residents, when given, must not be empty")
        return self

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
        cols = 1
        while cols * cols < self.num_tiles:
            cols += 1
        return cols


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
