"""The ``generative`` town dynamics: the Generative Agents loop on the town's map.

Generative Agents (Park et al., UIST'23) runs 10 game seconds per step; an agent calls
the model only when something happens, so most agent steps make no call and a few make
long chains of *sequential* calls (listed in `town_generative_calls`). Agent i's step s
reads only its own state at s and the step-s states of the agents it perceives; every
draw comes from ``draw(seed, ...)``. Rules:

1. **Sleep**: between its bedtime and wake time (seeded, within the routine's home
   hours) an agent sleeps: no call, it walks home. Sleeping agents perceive nobody and
   are perceived by nobody.
2. **Perceive**: awake agents seen now but not at s - 1 are new events; the
   ``ATTENTION`` nearest get one poignancy call each.
3. **Conversations**: an agent not in a conversation picks (seeded) one new event whose
   agent looks free, within ``radius - speed`` and not a recent partner; decide-to-talk
   says yes with ``talk_probability``. It then runs the whole conversation in this step
   (2..16 utterances) and stays put for ``chat_steps``. At s + 1 the partner joins (no
   call: the initiator generated both sides); if the partner started or joined another
   conversation meanwhile (nearest initiator first), the initiator gives up at s + 1 or
   s + 2.
4. **Actions**: an action lasts 5-60 minutes (seeded, 5-minute multiples); when it
   ends, when the routine moves to another place (a new hour-block, decomposed first),
   on waking (the day plan first) or after a conversation, the agent runs the action
   chain. Otherwise it walks to (or stays at) the action's spot, with no call.

The run starts mid-day from a steady state: awake agents are part-way through an
action, and what an agent sees at step 0 it has seen before.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from agentrt.scheduler.spatial_index import GridIndex
from agentrt.simulation import town_generative_calls as gc
from agentrt.simulation.town_dense import first_line
from agentrt.simulation.town_people import Resident
from agentrt.simulation.town_state import TownState, digest, draw
from agentrt.simulation.world import Action, AgentStepPlan, LLMCall, Observation

if TYPE_CHECKING:
    from agentrt.simulation.town import TownWorld

MAX_PARTNERS = 8


@dataclass
class _Step:
    """Everything agent i's step s decides, computed once from its observation."""

    calls: list[LLMCall] = field(default_factory=list)
    asleep: bool = False
    move_to: tuple[int, int] = (0, 0)
    activity: str = ""
    talk_to: int = -1
    chat_left: int = 0
    chat_step: int = -1
    said: str = ""
    action_left: int = 0
    block: str = ""
    actions: int = 0
    partners: tuple[int, ...] = ()
    seen: tuple[int, ...] = ()
    event_call: int = -1  # index of the call whose output names the new action
    last_utterance: int = -1  # index of the conversation's last utterance call


class GenerativeDynamics:
    """See the module docstring."""

    name = "generative"

    def __init__(self, world: TownWorld) -> None:
        self.world = world
        sc = world.scenario
        self.seed = sc.seed
        self.talk_range = max(0.0, sc.radius - sc.speed)
        self.sleep = [self._sleep_window(r) for r in world.residents]
        self._steps: dict[tuple[int, int], _Step] = {}
        self._start_seen: list[tuple[int, ...]] | None = None

    def initial_state(self, agent: int, pos: tuple[int, int], place: str) -> TownState:
        w = self.world
        r = w.residents[agent]
        if self.asleep(agent, w.hour(0)):
            return TownState(pos, place, "sleeping", 0, -1, "", "", asleep=True)
        block = r.target(w.hour(0))
        minutes = 5 * (1 + int(12 * draw(self.seed, "duration", agent, -1)))
        left = 1 + int(draw(self.seed, "left", agent) * self._steps_of(minutes))
        seen = self._seen_at_start()[agent]
        return TownState(
            pos, place, f"busy at {block}", 0, -1, "", "", False, left, block, 0, seen=seen
        )

    def available(self, st: TownState) -> bool:
        return not st.asleep and st.chat_left == 0 and st.talk_to == -1

    def plan(self, obs: Observation) -> AgentStepPlan:
        st = self._step(obs)
        prefix = self.world.residents[obs.agent].persona
        return AgentStepPlan(obs.agent, obs.step, prefix, tuple(st.calls))

    def act(self, obs: Observation, outputs: Sequence[str] | None) -> Action:
        st = self._step(obs)
        activity, said = st.activity, st.said
        if outputs and st.event_call >= 0:
            activity = first_line(outputs[st.event_call]) or activity
        if outputs and st.last_utterance >= 0:
            said = first_line(outputs[st.last_utterance], 200) or said
        talk = st.talk_to if st.talk_to >= 0 else None
        heard = tuple(first_line(o, 40) for o in outputs) if outputs else ()
        return Action(st.move_to, activity, talk, said, obs.neighbor_ids, detail=(st, heard))

    def next_state(self, agent: int, step: int, action: Action, pos: tuple[int, int]) -> TownState:
        self._steps.pop((agent, step), None)
        st, heard = action.detail  # type: ignore[misc]
        me = self.world.state(agent, step)
        memory = digest(
            me.memory, step, action.perceived, st.talk_to, action.said, action.activity, heard
        )
        return TownState(
            pos,
            self.world.place_at(pos),
            action.activity,
            0,
            st.talk_to,
            action.said,
            memory,
            st.asleep,
            st.action_left,
            st.block,
            st.actions,
            st.chat_left,
            st.seen,
            st.partners,
            st.chat_step,
        )

    def state_hash(self, agent: int, s: TownState) -> str:
        return digest(agent, s)

    def asleep(self, agent: int, hour: float) -> bool:
        wake, bed = self.sleep[agent]
        return hour < wake or hour >= bed

    def _step(self, obs: Observation) -> _Step:
        key = (obs.agent, obs.step)
        st = self._steps.get(key)
        if st is None:
            st = self._steps[key] = self._decide(obs)
        return st

    def _decide(self, obs: Observation) -> _Step:
        w, i, s = self.world, obs.agent, obs.step
        me = w.state(i, s)
        r = w.residents[i]
        hour = w.hour(s)
        if self.asleep(i, hour):
            home = w.spot(i, r.home)
            pos = w.step_towards(me.pos, home)
            doing = "sleeping" if pos == home else "going home to sleep"
            return _Step(asleep=True, move_to=pos, activity=doing, said="")
        states = {n.agent: w.state(n.agent, s) for n in obs.neighbors}
        awake = [n for n in obs.neighbors if not states[n.agent].asleep]
        new = [n for n in awake if n.agent not in me.seen]
        out = _Step(
            move_to=me.pos,
            activity=me.activity,
            action_left=me.action_left,
            block=me.block,
            actions=me.actions,
            partners=me.partners,
            seen=tuple(sorted(n.agent for n in awake)),
        )
        events = [(n.name, n.activity) for n in new[: gc.ATTENTION]]
        out.calls += gc.perceive_calls(obs.clock, events)
        if me.asleep:  # woke up: plan the day, then the first action
            out.calls += gc.day_plan_calls(obs.clock, int(self.sleep[i][0]))
            out.action_left = 0
        if me.chat_left > 0:
            if self._chat_goes_on(me, i, s, states):
                out.chat_left = me.chat_left - 1
                if out.chat_left:  # the last chatting step frees both partners together
                    out.talk_to, out.chat_step = me.talk_to, me.chat_step
                out.activity, out.said = me.activity, me.said
                return out
            out.action_left = 0  # the partner went elsewhere: pick up the day again
        elif self._join(obs, states, out):
            return out
        self._continue_action(obs, r, out)
        self._maybe_talk(obs, me, states, new, out)
        return out

    def _chat_goes_on(self, me: TownState, i: int, s: int, states: dict[int, TownState]) -> bool:
        partner = states.get(me.talk_to)
        if partner is None:
            return False
        if partner.talk_to == i:
            return True
        # the initiator's first chatting step: the partner joins at this very step if free
        return s == me.chat_step + 1 and self.available(partner)

    def _join(self, obs: Observation, states: dict[int, TownState], out: _Step) -> bool:
        """Join the nearest agent that started talking to us at the previous step."""
        i, s = obs.agent, obs.step
        for n in obs.neighbors:
            st = states[n.agent]
            if st.talk_to == i and st.chat_step == s - 1 and st.chat_left > 1:
                out.talk_to, out.chat_left, out.chat_step = n.agent, st.chat_left - 1, s
                out.activity = f"talking with {n.name}"
                out.action_left = 0
                out.partners = _remember(out.partners, n.agent)
                return True
        return False

    def _continue_action(self, obs: Observation, r: Resident, out: _Step) -> None:
        w, i, s = self.world, obs.agent, obs.step
        target = r.target(w.hour(s))
        if out.action_left <= 0 or target != out.block:
            out.calls += gc.action_calls(obs.clock, target, decompose=target != out.block)
            names_it = len(gc.ACTION_STEPS) - gc.ACTION_STEPS.index("event triple")
            out.event_call = len(out.calls) - names_it
            minutes = 5 * (1 + int(12 * draw(self.seed, "duration", i, s)))
            out.action_left = self._steps_of(minutes) - 1
            out.block = target
            out.actions += 1
            out.activity = f"busy at {target}"
        else:
            out.action_left -= 1
        goal = w.spot(i, out.block, out.actions)
        out.move_to = w.step_towards(obs.pos, goal)

    def _maybe_talk(
        self, obs: Observation, me: TownState, states: dict[int, TownState], new: list, out: _Step
    ) -> None:
        w, i, s = self.world, obs.agent, obs.step
        if w.hour(s) >= 23:  # Generative Agents: nobody starts a chat after 11 pm
            return
        free = [
            n
            for n in new
            if self.available(states[n.agent])
            and n.distance <= self.talk_range
            and n.agent not in me.partners
        ]
        if not free:
            return
        focus = free[int(draw(self.seed, "focus", i, s) * len(free))]
        out.calls.append(gc.talk_decision_call(obs.clock, focus.name, focus.activity))
        if draw(self.seed, "talk", i, focus.agent, s) >= w.scenario.talk_probability:
            return
        utterances = 2 + int(draw(self.seed, "utterances", i, s) * (gc.MAX_UTTERANCES - 1))
        out.calls += gc.conversation_calls(w.residents[i].name, focus.name, utterances)
        out.last_utterance = len(out.calls) - 4  # before the summary and the two replans
        out.talk_to, out.chat_step = focus.agent, s
        out.chat_left = gc.chat_steps(utterances, w.scenario.day_steps)
        out.partners = _remember(out.partners, focus.agent)
        out.move_to = obs.pos
        out.activity = f"talking with {focus.name}"
        out.said = f"Hello {focus.name.split()[0]}, good to see you."
        out.action_left = 0

    def _steps_of(self, minutes: int) -> int:
        return max(1, round(minutes * self.world.scenario.day_steps / 1440))

    def _sleep_window(self, r: Resident) -> tuple[float, float]:
        """(wake hour, bedtime): wake in [5.5, 8) before the first outing, bed in
        [21.5, 23.5) after coming home (Generative Agents' schedules sleep ~7-9 h)."""
        outings = [h for h, p in r.routine if p != r.home]
        first_out = min(outings) if outings else 12.0
        back_home = max((h for h, p in r.routine if p == r.home and h > 0), default=20.0)
        wake = min(5.5 + 2.5 * draw(self.seed, "wake", r.agent), first_out - 0.25)
        bed = max(21.5 + 2.0 * draw(self.seed, "bed", r.agent), back_home + 0.5)
        return wake, min(bed, 23.99)

    def _seen_at_start(self) -> list[tuple[int, ...]]:
        if self._start_seen is None:
            w = self.world
            awake = [not self.asleep(r.agent, w.hour(0)) for r in w.residents]
            grid = GridIndex(max(w.radius, 1.0))
            for r in w.residents:
                if awake[r.agent]:
                    grid.insert(r.agent, r.start)
            self._start_seen = [
                tuple(sorted(j for j, _ in grid.query(r.start, w.radius) if j != r.agent))
                if awake[r.agent]
                else ()
                for r in w.residents
            ]
        return self._start_seen


def _remember(partners: tuple[int, ...], agent: int) -> tuple[int, ...]:
    return (*partners, agent)[-MAX_PARTNERS:]
