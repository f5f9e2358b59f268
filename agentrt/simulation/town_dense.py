"""The ``dense`` town dynamics: every agent calls the model at every step.

Rules of an agent step at step s:

- **Talk**: an agent free to talk (cooldown 0) that perceives other free agents talks to
  the nearest one (ties by id): it stays put and is busy for ``TALK_COOLDOWN`` steps.
- **Walk**: otherwise it moves towards its spot in the place its routine names for this
  hour, at most ``speed`` cells per axis.
- **Memory**: a running digest of what it perceived, whom it talked to and what was said,
  so a schedule that let it miss a neighbour changes the world hash.
- **Calls**: perceive + decide at every step, + converse when it talks. LLM outputs set
  the activity (decide) and the words (converse).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from agentrt.simulation.town_state import TownState, digest
from agentrt.simulation.world import Action, AgentStepPlan, LLMCall, Neighbor, Observation

if TYPE_CHECKING:
    from agentrt.simulation.town import TownWorld

TALK_COOLDOWN = 6
PERCEIVE_TOKENS, DECIDE_TOKENS, CONVERSE_TOKENS = 16, 24, 48


class DenseDynamics:
    """perceive + decide every step; talk to the nearest free agent (see module doc)."""

    name = "dense"

    def __init__(self, world: TownWorld) -> None:
        self.world = world

    def initial_state(self, agent: int, pos: tuple[int, int], place: str) -> TownState:
        return TownState(pos, place, "waking up", 0, -1, "", "")

    def available(self, st: TownState) -> bool:
        return st.cooldown == 0

    def plan(self, obs: Observation) -> AgentStepPlan:
        w = self.world
        r = w.residents[obs.agent]
        target = r.target(w.hour(obs.step))
        near = obs.neighbors[:8]
        seen = "; ".join(f"{n.name} ({n.activity}) {n.distance:g} cells away" for n in near)
        seen = seen or "nobody"
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

    def act(self, obs: Observation, outputs: Sequence[str] | None) -> Action:
        w = self.world
        me = w.state(obs.agent, obs.step)
        r = w.residents[obs.agent]
        decided = first_line(outputs[1]) if outputs and len(outputs) > 1 else ""
        partner = self._partner(obs)
        if partner is not None:
            if outputs and len(outputs) > 2:
                said = first_line(outputs[2], 200)
            else:
                where = obs.place or "the street"
                said = f"Hello {partner.name.split()[0]}, nice to see you at {where}."
            activity = decided or f"talking with {partner.name}"
            return Action(me.pos, activity, partner.agent, said, obs.neighbor_ids)
        target = r.target(w.hour(obs.step))
        goal = w.spot(obs.agent, target)
        nx, ny = w.step_towards(me.pos, goal)
        activity = decided or (f"at {target}" if (nx, ny) == goal else f"walking to {target}")
        return Action((nx, ny), activity, None, "", obs.neighbor_ids)

    def next_state(self, agent: int, step: int, action: Action, pos: tuple[int, int]) -> TownState:
        me = self.world.state(agent, step)
        talking = action.talk_to is not None
        cooldown = TALK_COOLDOWN if talking else max(0, me.cooldown - 1)
        talk_to = -1 if action.talk_to is None else action.talk_to
        memory = digest(me.memory, step, action.perceived, talk_to, action.said, action.activity)
        place = self.world.place_at(pos)
        return TownState(pos, place, action.activity, cooldown, talk_to, action.said, memory)

    def state_hash(self, agent: int, s: TownState) -> str:
        return digest(agent, s.pos, s.place, s.activity, s.cooldown, s.talk_to, s.said, s.memory)

    def _partner(self, obs: Observation) -> Neighbor | None:
        if self.world.state(obs.agent, obs.step).cooldown:
            return None
        return next((n for n in obs.neighbors if n.available), None)


def first_line(text: str, limit: int = 80) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line[:limit]
