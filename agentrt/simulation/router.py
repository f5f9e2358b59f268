"""Route agents' LLM calls over R data-parallel engine replicas (each with its own KV cache).

- **Affinity**: once assigned, all of an agent's calls go to its replica (its prefix cache).
- **Balance**: an agent is assigned to the replica with the fewest assigned agents (ties:
  fewest calls in flight, then lowest index).
- **Move** (optional, off by default): when an agent's replica has more than
  ``move_factor`` x the in-flight calls of the least-loaded replica, plus ``move_slack``,
  the agent is reassigned there (its prefix is recomputed once there).

Callers report each call's start (`route`) and end (`done`); pure, deterministic bookkeeping.
"""

from __future__ import annotations


class Router:
    """Sticky agent -> replica assignment with load balance over ``replicas`` replicas."""

    def __init__(
        self, replicas: int, *, move_factor: float | None = None, move_slack: int = 8
    ) -> None:
        if replicas < 1:
            raise ValueError(f"need at least one replica, got {replicas}")
        if move_factor is not None and move_factor < 1.0:
            raise ValueError(f"move_factor must be >= 1, got {move_factor}")
        self.replicas = replicas
        self.move_factor = move_factor
        self.move_slack = move_slack
        self.inflight = [0] * replicas  # calls in flight per replica
        self.assigned = [0] * replicas  # agents assigned per replica
        self.calls = [0] * replicas  # calls routed per replica, in total
        self.moves = 0
        self._owner: dict[str, int] = {}
        self._order: dict[str, int] = {}  # agent -> position of its first assignment
        self._members: list[dict[str, None]] = [{} for _ in range(replicas)]

    def owner(self, agent: str) -> int | None:
        """The replica an agent is assigned to (None before its first call)."""
        return self._owner.get(agent)

    def agents_of(self, replica: int) -> list[str]:
        """The replica's agents in the order they were first assigned."""
        members = list(self._members[replica])
        if self.moves:  # a moved agent joined its new replica's dict at the end
            members.sort(key=self._order.__getitem__)
        return members

    def _least_loaded(self, key: str) -> int:
        if key == "agents":
            return min(range(self.replicas), key=lambda r: (self.assigned[r], self.inflight[r], r))
        return min(range(self.replicas), key=lambda r: (self.inflight[r], self.assigned[r], r))

    def assign(self, agent: str) -> int:
        """The agent's replica, assigning it (fewest agents) if it has none; no call counted."""
        r = self._owner.get(agent)
        if r is None:
            r = self._least_loaded("agents")
            self._owner[agent] = r
            self._order[agent] = len(self._order)
            self._members[r][agent] = None
            self.assigned[r] += 1
        return r

    def route(self, agent: str) -> int:
        """Pick the replica for the agent's next call and count the call in flight there."""
        r = self.assign(agent)
        if self.move_factor is not None and self.replicas > 1:
            best = self._least_loaded("inflight")
            if self.inflight[r] > self.move_factor * self.inflight[best] + self.move_slack:
                self.assigned[r] -= 1
                self.assigned[best] += 1
                self._owner[agent] = best
                del self._members[r][agent]
                self._members[best][agent] = None
                self.moves += 1
                r = best
        self.inflight[r] += 1
        self.calls[r] += 1
        return r

    def done(self, replica: int) -> None:
        """A call routed to ``replica`` finished."""
        if self.inflight[replica] <= 0:
            raise ValueError(f"replica {replica} has no call in flight")
        self.inflight[replica] -= 1
