"""A Smallville-like town: residents follow daily routines between places and talk when
they meet.

Rules of an agent step at step s (time of day from ``start_hour`` and ``steps_per_day``):

- **Talk**: an agent free to talk (cooldown 0) that perceives other free agents talks to
  the nearest one (ties by id): it stays put this step and is busy for
  ``TALK_COOLDOWN`` steps.
- **Walk**: otherwise it moves towards its spot in the place its routine names for this
  hour, at most ``speed`` cells per axis (so at most ``speed`` in Chebyshev distance).
- **Memory**: a running digest of everything it perceived, whom it talked to and what was
  said, so a schedule that let it miss a neighbour changes the world hash.

Movement and talking follow the rules whatever a model says; LLM outputs set the
activity (decide) and the words (converse), so they enter the state and its hash.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from agentrt.scheduler.spatial_index import Pos, chebyshev
from agentrt.simulation.history import History
from agentrt.simulation.town_people import Resident, make_residents, tiled_places
from agentrt.simulation.town_scenario import TownScenario
from agentrt.simulation.world import (
    Action,
    AgentStepPlan,
    LLMCall,
    Neighbor,
    Observation,
    World,
)

TALK_COOLDOWN = 6
PERCEIVE_TOKENS, DECIDE_TOKENS, CONVERSE_TOKENS = 16, 24, 48


@dataclass(frozen=True)
class TownState:
    pos: tuple[int, int]
    place: str
    activity: str
    cooldown: int
    talk_to: int  # -1: nobody
    said: str
    memory: str


def _digest(*parts: object) -> str:
    return hashlib.blake2b(repr(parts).encode(), digest_size=8).hexdigest()


class TownWorld(World):
    """The town of a `TownScenario`; ``strict`` checks causality on every read (tests)."""

    def __init__(self, scenario: TownScenario, *, strict: bool = False) -> None:
        self.scenario = scenario
        self.radius = scenario.radius
        self.speed = scenario.speed
        self.residents: list[Resident] = make_residents(scenario)
        self.places = tiled_places(scenario)
        self.width = scenario.width * scenario.tile_columns
        self.height = scenario.height * (-(-scenario.num_tiles // scenario.tile_columns))
        self._by_name = {p.name: p for p in self.places}
        self._spots: dict[tuple[int, str], tuple[int, int]] = {}
        self._place_at: dict[tuple[int, int], str] = {}
        for p in reversed(self.places):  # the first listed wins where places overlap
            for x in range(p.x, p.x + p.w):
                for y in range(p.y, p.y + p.h):
                    self._place_at[(x, y)] = p.name
        initial = [
            TownState(r.start, self._place_at.get(r.start, ""), "waking up", 0, -1, "", "")
            for r in self.residents
        ]
        self.history: History[TownState] = History(
            initial, lambda s: s.pos, radius=self.radius, speed=self.speed, strict=strict
        )

    # -- World interface ---------------------------------------------------------------

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
        seen = tuple(
            Neighbor(j, self.residents[j].name, st.pos, d, st.activity, st.cooldown == 0, st.said)
            for d, j, st in self.history.neighbors(agent, step)
        )
        return Observation(agent, step, me.pos, me.place, self.clock(step), seen)

    def plan(self, obs: Observation) -> AgentStepPlan:
        r = self.residents[obs.agent]
        target = r.target(self.hour(obs.step))
        if obs.neighbors:
            seen = "; ".join(
                f"{n.name} ({n.activity}) {n.distance:g} cells away" for n in obs.neighbors[:8]
            )
        else:
            seen = "nobody"
        where = obs.place or "the street"
        calls = [
            LLMCall(
                "perceive",
                f"It is {obs.clock}. You are at {where}. You see: {seen}. What do you notice?",
                PERCEIVE_TOKENS,
            ),
            LLMCall(
                "decide",
                f"It is {obs.clock}. Your routine says you should be at {target}. "
                "What do you do now?",
                DECIDE_TOKENS,
            ),
        ]
        partner = self._partner(obs)
        if partner is not None:
            last = f' and just said "{partner.said}"' if partner.said else ""
            calls.append(
                LLMCall(
                    "converse",
                    f"You meet {partner.name}, who is {partner.activity}{last}. "
                    "What do you say to them?",
                    CONVERSE_TOKENS,
                )
            )
        return AgentStepPlan(obs.agent, obs.step, r.persona, tuple(calls))

    def act(self, obs: Observation, outputs: Sequence[str] | None = None) -> Action:
        me = self.history.get(obs.agent, obs.step)
        r = self.residents[obs.agent]
        decided = _first_line(outputs[1]) if outputs and len(outputs) > 1 else ""
        partner = self._partner(obs)
        if partner is not None:
            if outputs and len(outputs) > 2:
                said = _first_line(outputs[2], 200)
            else:
                where = obs.place or "the street"
                said = f"Hello {partner.name.split()[0]}, nice to see you at {where}."
            activity = decided or f"talking with {partner.name}"
            return Action(me.pos, activity, partner.agent, said, obs.neighbor_ids)
        target = r.target(self.hour(obs.step))
        goal = self._spot(obs.agent, target)
        v = int(self.speed)
        x, y = me.pos
        nx = x + max(-v, min(v, goal[0] - x))
        ny = y + max(-v, min(v, goal[1] - y))
        activity = decided or (f"at {target}" if (nx, ny) == goal else f"walking to {target}")
        return Action((nx, ny), activity, None, "", obs.neighbor_ids)

    def apply(self, agent: int, step: int, action: Action) -> None:
        me = self.history.get(agent, step)
        pos = (int(action.move_to[0]), int(action.move_to[1]))
        if chebyshev(me.pos, pos) > self.speed:
            raise ValueError(f"agent {agent} cannot move {me.pos} -> {pos} in one step")
        if not (0 <= pos[0] < self.width and 0 <= pos[1] < self.height):
            raise ValueError(f"agent {agent} cannot leave the grid: {pos}")
        talking = action.talk_to is not None
        cooldown = TALK_COOLDOWN if talking else max(0, me.cooldown - 1)
        talk_to = -1 if action.talk_to is None else action.talk_to
        memory = _digest(me.memory, step, action.perceived, talk_to, action.said, action.activity)
        new = TownState(
            pos,
            self._place_at.get(pos, ""),
            action.activity,
            cooldown,
            talk_to,
            action.said,
            memory,
        )
        self.history.append(agent, step, new)

    def state_hash(self, agent: int, step: int) -> str:
        s = self.history.get(agent, step)
        return _digest(agent, s.pos, s.place, s.activity, s.cooldown, s.talk_to, s.said, s.memory)

    # -- helpers -----------------------------------------------------------------------

    def hour(self, step: int) -> float:
        sc = self.scenario
        return (sc.start_hour + step * 24.0 / sc.steps_per_day) % 24.0

    def clock(self, step: int) -> str:
        sc = self.scenario
        minutes = int(round(sc.start_hour * 60 + step * 1440 / sc.steps_per_day))
        day, m = divmod(minutes, 1440)
        return f"day {day + 1} {m // 60:02d}:{m % 60:02d}"

    def _partner(self, obs: Observation) -> Neighbor | None:
        if self.history.get(obs.agent, obs.step).cooldown:
            return None
        return next((n for n in obs.neighbors if n.available), None)

    def _spot(self, agent: int, place: str) -> tuple[int, int]:
        """The agent's own cell in ``place`` (stable per agent and place)."""
        key = (agent, place)
        spot = self._spots.get(key)
        if spot is not None:
            return spot
        p = self._by_name[place]
        h = int(_digest(self.scenario.seed, agent, place), 16)
        spot = self._spots[key] = (p.x + h % p.w, p.y + (h // p.w) % p.h)
        return spot


def _first_line(text: str, limit: int = 80) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line[:limit]
