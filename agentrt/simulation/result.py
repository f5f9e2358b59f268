"""What a simulation run returns (`SimResult`) and the world hash it reports."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any


@dataclass
class SimResult:
    """One mode's run. ``makespan`` and ``busy`` are in the executor's seconds (virtual
    or wall); ``busy`` sums the executor's busy spans (see each executor), so
    ``parallelism`` is their mean number in flight."""

    mode: str
    agents: int
    steps: int
    makespan: float
    agent_steps: int
    calls: int
    busy: float
    world_hash: str
    wall_s: float
    true_deps: dict[tuple[int, int], tuple[int, ...]] | None = field(default=None, repr=False)
    extra: dict[str, Any] = field(default_factory=dict, repr=False)  # runner-specific stats

    @property
    def parallelism(self) -> float:
        """Mean busy spans (calls or agent steps) in flight."""
        return self.busy / self.makespan if self.makespan else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "agents": self.agents,
            "steps": self.steps,
            "makespan": self.makespan,
            "agent_steps": self.agent_steps,
            "calls": self.calls,
            "parallelism": self.parallelism,
            "world_hash": self.world_hash,
            "wall_s": self.wall_s,
            **self.extra,
        }


def world_hash(step_hashes: list[list[str]]) -> str:
    """Digest of ``step_hashes[s][agent]`` = hash of the agent's state after step s, in
    (step, agent) order: it does not depend on the order in which agent steps ran."""
    h = hashlib.blake2b(digest_size=16)
    for row in step_hashes:
        for x in row:
            h.update(x.encode())
    return h.hexdigest()
