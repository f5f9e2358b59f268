"""Residents of a town: personas and daily routines, generated deterministically from a seed.

The tiled layout: tile ``t`` sits at column ``t % cols``, row ``t // cols`` and holds a
copy of every base place, named ``name#t`` when there is more than one tile. Resident
``k`` of tile ``t`` is agent ``t * per_tile + k``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from agentrt.simulation.town_scenario import PlaceSpec, TownScenario


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


FIRST = _words(
    "Ada Ben Cleo Dev Elif Femi Gus Hana Ivo Jun Kira Leo Mara Nils Omar Pia Quin Rosa "
    "Sami Tess Umar Vera Wes Xia Yara Zed Alma Bruno Cyra Dario Esme Finn Gaia Hugo Iris "
    "Jonas Kai Lena Milo Nora"
)
LAST = _words(
    "Moreno Li Okafor Novak Berg Silva Tanaka Duval Rossi Kowal Haddad Lund Reyes Ivanov "
    "Costa Meyer Sato Nair Quinn Walsh Baptiste Ortiz Park Holm Amari Fischer Lopez Varga "
    "Engel Dahl Kaur Mbeki Russo Adler Jensen Cruz Wolfe Abara Vance Ueda"
)
TRAITS = _words(
    "curious warm punctual shy talkative patient stubborn cheerful thoughtful generous "
    "anxious witty calm ambitious gentle blunt dreamy practical"
)
# job -> kind of workplace (None: no workplace)
JOBS: dict[str, str | None] = {
    "barista": "cafe",
    "librarian": "library",
    "writer": "library",
    "teacher": "school",
    "student": "school",
    "shopkeeper": "market",
    "clerk": "office",
    "engineer": "office",
    "bartender": "bar",
    "gardener": "park",
    "retiree": None,
}
LEISURE = ("park", "cafe", "market", "library", "bar")
BIO = (
    "grew up in the town and knows most neighbours by name",
    "keeps a small notebook of things overheard during the day",
    "likes to walk the long way round through the park",
    "has strong opinions about the coffee at the cafe",
    "is saving money for a trip to the coast",
    "volunteers at the library on weekends",
    "remembers every birthday in the street",
    "is learning to play the violin, badly",
)


@dataclass(frozen=True)
class Resident:
    agent: int
    tile: int
    name: str
    home: str
    work: str | None
    start: tuple[int, int]
    routine: tuple[tuple[float, str], ...]  # (start hour, place name), sorted by hour
    persona: str

    def target(self, hour: float) -> str:
        """The place the routine wants the resident at, at ``hour`` (0 <= hour < 24)."""
        place = self.routine[0][1]
        for start, name in self.routine:
            if start <= hour:
                place = name
        return place


def tiled_places(sc: TownScenario) -> list[PlaceSpec]:
    """Every place of the town, tile by tile, at its absolute coordinates."""
    cols, tiles = sc.tile_columns, sc.num_tiles
    out = []
    for t in range(tiles):
        ox, oy = (t % cols) * sc.tile_width, (t // cols) * sc.tile_height
        for p in sc.place_specs:
            name = p.name if tiles == 1 else f"{p.name}#{t}"
            out.append(p.model_copy(update={"name": name, "x": p.x + ox, "y": p.y + oy}))
    return out


def _in_tile(place: str, tile: int, sc: TownScenario) -> str:
    return place if sc.num_tiles == 1 else f"{place}#{tile}"


def make_residents(sc: TownScenario) -> list[Resident]:
    rng = random.Random(sc.seed)
    names = [f"{f} {last}" for f in FIRST for last in LAST]
    rng.shuffle(names)
    by_name = {p.name: p for p in sc.place_specs}
    kinds: dict[str, list[str]] = {}
    for p in sc.place_specs:
        kinds.setdefault(p.kind, []).append(p.name)
    homes = kinds["home"]
    cols, per_tile = sc.tile_columns, sc.per_tile
    out = []
    for agent in range(sc.agents):
        t, k = divmod(agent, per_tile)
        ox, oy = (t % cols) * sc.tile_width, (t // cols) * sc.tile_height
        spec = sc.residents[k % len(sc.residents)] if sc.residents else None
        job = rng.choice(sorted(JOBS))
        traits = tuple(rng.sample(TRAITS, 3))
        home = spec.home if spec else homes[k % len(homes)]
        if spec:
            work = spec.work
        else:
            wanted = JOBS[job]
            work = rng.choice(kinds[wanted]) if wanted in kinds else None
        if spec and spec.name:
            name = spec.name
        else:
            name = names[agent % len(names)]
            if agent >= len(names):
                name += f" {agent // len(names) + 1}"
        h = by_name[home]
        sx, sy = spec.start if spec and spec.start else (h.x + k % h.w, h.y + (k // h.w) % h.h)
        routine = _routine(rng, work, job, [n for n in LEISURE if n in kinds], kinds)
        routine = tuple(
            sorted((hr, _in_tile(home if p == "@home" else p, t, sc)) for hr, p in routine)
        )
        persona = _persona(rng, name, job, traits, home, work, sc.persona_words)
        out.append(
            Resident(
                agent,
                t,
                name,
                _in_tile(home, t, sc),
                work and _in_tile(work, t, sc),
                (sx + ox, sy + oy),
                routine,
                persona,
            )
        )
    return out


def _routine(
    rng: random.Random, work: str | None, job: str, leisure: list[str], kinds: dict[str, list[str]]
) -> list[tuple[float, str]]:
    """Sleep at home, breakfast, work with a lunch break, leisure, home again."""
    home = "@home"
    wake = rng.choice((6.0, 6.5, 7.0, 7.5, 8.0))
    fun = [rng.choice(kinds[k]) for k in leisure] or [home]
    day: list[tuple[float, str]] = [(0.0, home)]
    if "cafe" in kinds and rng.random() < 0.4:
        day.append((wake, rng.choice(kinds["cafe"])))
    if work is None or job == "bartender":
        day += [(wake + 2, fun[0]), (12.0, fun[-1]), (14.0, home)]
        if work is not None:
            day.append((16.0, work))
        else:
            day.append((16.0, fun[len(fun) // 2]))
        day.append((rng.choice((20.0, 21.0, 22.5)), home))
        return day
    start = rng.choice((8.0, 8.5, 9.0, 9.5))
    end = rng.choice((16.0, 16.5, 17.0, 17.5, 18.0))
    day += [(start, work), (12.0, fun[1 % len(fun)]), (13.0, work), (end, fun[0])]
    day.append((rng.choice((19.0, 20.0, 21.0)), home))
    return day


def _persona(
    rng: random.Random,
    name: str,
    job: str,
    traits: tuple[str, ...],
    home: str,
    work: str | None,
    words: int,
) -> str:
    at = f" and work at the {work}" if work else ""
    text = (
        f"You are {name}, a {rng.randint(18, 80)}-year-old {job} in a small town. "
        f"You live at {home}{at}. You are {traits[0]}, {traits[1]} and {traits[2]}. "
        "You follow your daily routine, notice the people around you and talk briefly "
        "with those you meet. Answer in one short sentence."
    )
    n = len(text.split())
    while n < words:
        line = f" {name.split()[0]} {rng.choice(BIO)}."
        text += line
        n += len(line.split())
    return text
