"""Per-agent state history with a spatial index per step.

Agents may be at different steps; each reads the others as they were at its own step.
``strict`` makes a read fail (`CausalityError`) when an agent that has not reached the
step could, given the speed limit, be within the perception radius (O(N): for tests).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from agentrt.scheduler.spatial_index import GridIndex, Pos, chebyshev
from agentrt.simulation.world import CausalityError

S = TypeVar("S")


class History(Generic[S]):
    """``states[agent][step]``; ``pos_of(state)`` gives a state's position."""

    def __init__(
        self,
        initial: list[S],
        pos_of: Callable[[S], Pos],
        *,
        radius: float,
        speed: float,
        strict: bool = False,
    ) -> None:
        self._pos_of = pos_of
        self.radius = radius
        self.speed = speed
        self.strict = strict
        self._cell = max(radius, 1.0)
        self._states: list[list[S]] = [[s] for s in initial]
        self._grids: list[GridIndex] = []
        for i, s in enumerate(initial):
            self._grid(0).insert(i, pos_of(s))

    def _grid(self, step: int) -> GridIndex:
        while len(self._grids) <= step:
            self._grids.append(GridIndex(self._cell))
        return self._grids[step]

    def get(self, agent: int, step: int) -> S:
        states = self._states[agent]
        if not 0 <= step < len(states):
            raise CausalityError(
                f"agent {agent} has no state at step {step} (it is at step {len(states) - 1})"
            )
        return states[step]

    def append(self, agent: int, step: int, state: S) -> None:
        """Record the agent's state at ``step + 1`` (it must be at ``step`` now)."""
        at = len(self._states[agent]) - 1
        if at != step:
            raise ValueError(
                f"agent {agent} is at step {at}, cannot apply an action of step {step}"
            )
        self._states[agent].append(state)
        self._grid(step + 1).insert(agent, self._pos_of(state))

    def neighbors(self, agent: int, step: int) -> list[tuple[float, int, S]]:
        """``(distance, id, state)`` of the other agents within the radius at ``step``,
        nearest first, ties by id."""
        me = self._pos_of(self.get(agent, step))
        if self.strict:
            self._check_causal(agent, step, me)
        states, x, y = self._states, me[0], me[1]
        found = [
            (max(abs(p[0] - x), abs(p[1] - y)), j, states[j][step])  # chebyshev(me, p)
            for j, p in self._grid(step).query(me, self.radius)
            if j != agent
        ]
        found.sort()  # by distance, then id (ids differ, so states are never compared)
        return found

    def _check_causal(self, agent: int, step: int, me: Pos) -> None:
        for j, states in enumerate(self._states):
            b = len(states) - 1
            if b < step:
                d = chebyshev(me, self._pos_of(states[b]))
                if d <= self.radius + (step - b) * self.speed:
                    raise CausalityError(
                        f"agent {agent} read step {step} while agent {j}, {d} away, is still "
                        f"at step {b} and could come within radius {self.radius}"
                    )
