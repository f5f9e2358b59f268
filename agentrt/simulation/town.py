"""A Smallville-like town: residents follow daily routines between places and talk when
they meet.

`TownWorld` owns what every town shares: the tiled map, the residents, the state history,
the clock and perception (agents within ``radius``, nearest first). What an agent does at
a step (its LLM calls, action and next state) belongs to the scenario's *dynamics*:
``generative`` (`town_generative`, default) or ``dense`` (`town_dense`). Movement and
talking follow the rules whatever a model says; LLM outputs set activities and words.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from agentrt.scheduler.spatial_index import Pos, chebyshev
from agentrt.simulation.history import History
from agentrt.simulation.town_dense import DenseDynamics
from agentrt.simulation.town_generative import GenerativeDynamics
from agentrt.simulation.town_people import Resident, make_residents, tiled_places
from agentrt.simulation.town_scenario import TownScenario
from agentrt.simulation.town_state import TownState, digest
from agentrt.simulation.world import Action, AgentStepPlan, Neighbor, Observation, World


class TownDynamics(Protocol):
    """What an agent does at a step; `TownWorld` calls it with states it may read."""

    name: str

    def initial_state(self, agent: int, pos: tuple[int, int], place: str) -> TownState: ...

    def available(self, st: TownState) -> bool: ...

    def plan(self, obs: Observation) -> AgentStepPlan: ...

    def act(self, obs: Observation, outputs: Sequence[str] | None) -> Action: ...

    def next_state(
        self, agent: int, step: int, action: Action, pos: tuple[int, int]
    ) -> TownState: ...

    def state_hash(self, agent: int, s: TownState) -> str: ...


class TownWorld(World):
    """The town of a `TownScenario`; ``strict`` checks causality on every read (tests)."""

    def __init__(self, scenario: TownScenario, *, strict: bool = False) -> None:
        self.scenario = scenario
        self.radius = scenario.radius
        self.speed = scenario.speed
        self.residents: list[Resident] = make_residents(scenario)
        self.places = tiled_places(scenario)
        self.width = scenario.tile_width * scenario.tile_columns
        self.height = scenario.tile_height * (-(-scenario.num_tiles // scenario.tile_columns))
        self._by_name = {p.name: p for p in self.places}
        self._spots: dict[tuple[int, str, int], tuple[int, int]] = {}
        self._place_at: dict[tuple[int, int], str] = {}
        for p in reversed(self.places):  # the first listed wins where places overlap
            for x in range(p.x, p.x + p.w):
                for y in range(p.y, p.y + p.h):
                    self._place_at[(x, y)] = p.name
        kinds = {"dense": DenseDynamics, "generative": GenerativeDynamics}
        self.dynamics: TownDynamics = kinds[scenario.dynamics](self)
        initial = [
            self.dynamics.initial_state(r.agent, r.start, self.place_at(r.start))
            for r in self.residents
        ]
        self.history: History[TownState] = History(
            initial, lambda s: s.pos, radius=self.radius, speed=self.speed, strict=strict
        )

    @property
    def num_agents(self) -> int:
        return len(self.residents)

    def persona(self, agent: int) -> str:
        return self.residents[agent].persona

    def position(self, agent: int, step: int) -> Pos:
        return self.history.get(agent, step).pos

    def state(self, agent: int, step: int) -> TownState:
        return self.history.get(agent, step)

    def observe(self, agent: int, step: int) -> Observation:
        me = self.history.get(agent, step)
        avail = self.dynamics.available
        seen = tuple(
            Neighbor(j, self.residents[j].name, st.pos, d, st.activity, avail(st), st.said)
            for d, j, st in self.history.neighbors(agent, step)
        )
        return Observation(agent, step, me.pos, me.place, self.clock(step), seen)

    def plan(self, obs: Observation) -> AgentStepPlan:
        return self.dynamics.plan(obs)

    def act(self, obs: Observation, outputs: Sequence[str] | None = None) -> Action:
        return self.dynamics.act(obs, outputs)

    def apply(self, agent: int, step: int, action: Action) -> None:
        me = self.history.get(agent, step)
        pos = (int(action.move_to[0]), int(action.move_to[1]))
        if chebyshev(me.pos, pos) > self.speed:
            raise ValueError(f"agent {agent} cannot move {me.pos} -> {pos} in one step")
        if not (0 <= pos[0] < self.width and 0 <= pos[1] < self.height):
            raise ValueError(f"agent {agent} cannot leave the grid: {pos}")
        self.history.append(agent, step, self.dynamics.next_state(agent, step, action, pos))

    def state_hash(self, agent: int, step: int) -> str:
        return self.dynamics.state_hash(agent, self.history.get(agent, step))

    def hour(self, step: int) -> float:
        return (self.scenario.start_hour + step * 24.0 / self.scenario.day_steps) % 24.0

    def clock(self, step: int) -> str:
        sc = self.scenario
        minutes = int(round(sc.start_hour * 60 + step * 1440 / sc.day_steps))
        day, m = divmod(minutes, 1440)
        return f"day {day + 1} {m // 60:02d}:{m % 60:02d}"

    def place_at(self, pos: tuple[int, int]) -> str:
        return self._place_at.get(pos, "")

    def spot(self, agent: int, place: str, variant: int = 0) -> tuple[int, int]:
        """The agent's own cell in ``place`` (stable per agent, place and ``variant``)."""
        key = (agent, place, variant)
        spot = self._spots.get(key)
        if spot is None:  # cached: ~2.5% of a generative run (1.0% of the simulator-speed run)
            p = self._by_name[place]
            parts: tuple[object, ...] = (self.scenario.seed, agent, place)
            h = int(digest(*(parts if variant == 0 else (*parts, variant))), 16)
            spot = self._spots[key] = (p.x + h % p.w, p.y + (h // p.w) % p.h)
        return spot

    def step_towards(self, pos: tuple[int, int], goal: tuple[int, int]) -> tuple[int, int]:
        """One move from ``pos`` towards ``goal``: at most ``speed`` cells per axis."""
        v = int(self.speed)
        x, y = pos
        return (x + max(-v, min(v, goal[0] - x)), y + max(-v, min(v, goal[1] - y)))
