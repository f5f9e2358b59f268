"""The interface a world plugs into the simulation runner through.

Agent step s reads the world at step s within the perception radius, makes LLM calls, and
writes the agent's state at step s + 1 (step 0 = the initial state):

    obs = world.observe(agent, s)          # what it perceives at step s
    plan = world.plan(obs)                 # the LLM calls: persona prefix + texts
    outputs = [...]                        # one completion per plan.calls entry (or None)
    action = world.act(obs, outputs)       # outputs=None: deterministic fallback, no LLM
    world.apply(agent, s, action)          # state at s + 1

Contracts the schedulers rely on (`agentrt.scheduler.sim_modes`): distances are Chebyshev;
an agent moves at most ``speed`` per step and perceives only agents within ``radius``;
``observe`` and ``act`` depend only on the step-s states of the agent and of those it
perceives (worlds keep every agent's state history); everything is deterministic under
the world's seed.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

from agentrt.scheduler.spatial_index import Pos


class CausalityError(RuntimeError):
    """An agent step read the world before everything it could perceive was there:
    the schedule broke the dependency rules."""


@dataclass(frozen=True)
class LLMCall:
    """One LLM call of an agent step: its kind, the dynamic text after the persona prefix,
    and the most tokens it may generate. With ``history`` the prompt continues with the
    outputs of the plan's earlier ``history`` calls, one per line (a conversation so far:
    such a call cannot start before those calls finished)."""

    kind: str
    text: str
    max_tokens: int
    history: bool = False


def call_text(calls: Sequence[LLMCall], index: int, outputs: Sequence[str]) -> str:
    """The dynamic text of ``calls[index]`` given the outputs of the calls before it."""
    call = calls[index]
    if not call.history:
        return call.text
    said = [out.strip() for c, out in zip(calls[:index], outputs, strict=False) if c.history]
    return "\n".join([call.text, *said]) if said else call.text


@dataclass(frozen=True)
class AgentStepPlan:
    """The LLM calls an agent makes at a step, in order; ``prefix`` is its persona (the
    fixed, cacheable part of every prompt)."""

    agent: int
    step: int
    prefix: str
    calls: tuple[LLMCall, ...]


@dataclass(frozen=True)
class Neighbor:
    """Another agent as perceived at a step."""

    agent: int
    name: str
    pos: Pos
    distance: float
    activity: str
    available: bool  # free to start a conversation
    said: str  # what it said in its last step ("" if nothing)


@dataclass(frozen=True)
class Observation:
    """What ``agent`` perceives at ``step``: itself and the agents within the radius,
    nearest first (ties by id)."""

    agent: int
    step: int
    pos: Pos
    place: str
    clock: str  # "day D HH:MM"
    neighbors: tuple[Neighbor, ...]

    @property
    def neighbor_ids(self) -> tuple[int, ...]:
        return tuple(n.agent for n in self.neighbors)


@dataclass(frozen=True)
class Action:
    """What an agent step does: where the agent stands next (at most ``speed`` away),
    its activity, whom it talks to (or None) and what it says."""

    move_to: Pos
    activity: str
    talk_to: int | None = None
    said: str = ""
    perceived: tuple[int, ...] = ()
    detail: object = None  # world-specific, for `World.apply` (runners never look inside)


class World(ABC):
    """A simulated world of ``num_agents`` agents (ids ``0 .. num_agents - 1``)."""

    radius: float
    speed: float

    @property
    @abstractmethod
    def num_agents(self) -> int: ...

    @abstractmethod
    def persona(self, agent: int) -> str:
        """The agent's fixed prompt prefix (name, job, traits...)."""

    @abstractmethod
    def position(self, agent: int, step: int) -> Pos:
        """Where the agent stands at ``step`` (its state there must exist)."""

    @abstractmethod
    def observe(self, agent: int, step: int) -> Observation:
        """What the agent perceives at ``step``; `CausalityError` in strict worlds when an
        agent that could be within reach has not reached ``step`` yet."""

    @abstractmethod
    def plan(self, obs: Observation) -> AgentStepPlan:
        """The LLM calls of this agent step (they depend on whom it meets)."""

    @abstractmethod
    def act(self, obs: Observation, outputs: Sequence[str] | None = None) -> Action:
        """The action, from the plan's outputs (one per call) or, with ``None``, the
        deterministic fallback that needs no model."""

    @abstractmethod
    def apply(self, agent: int, step: int, action: Action) -> None:
        """Write the agent's state at ``step + 1``; `ValueError` on an illegal action."""

    @abstractmethod
    def state_hash(self, agent: int, step: int) -> str:
        """A digest of the agent's state at ``step``."""
