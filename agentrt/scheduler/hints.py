"""Workflow hints for the KV manager: each agent's steps-to-execution (STE).

The board keeps, per agent, the minimum STE over all live workflows (an agent's prefix
is shared by every instance of its workflow), counting the workflows at each value, so an
update costs the size of one workflow's map.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Mapping


class HintBoard:
    def __init__(self) -> None:
        self._per_workflow: dict[Hashable, dict[str, float]] = {}
        self._values: dict[str, Counter[float]] = {}  # agent -> STE -> live workflows
        self.updates = 0

    def publish(self, workflow_id: Hashable, ste: Mapping[str, float]) -> None:
        """Replace one workflow's STE map (agent id -> steps until it can run)."""
        self._drop(workflow_id)
        self._per_workflow[workflow_id] = dict(ste)
        for agent, value in ste.items():
            self._values.setdefault(agent, Counter())[value] += 1
        self.updates += 1

    def end(self, workflow_id: Hashable) -> None:
        """A workflow finished, failed or was cancelled: its agents need nothing more."""
        self._drop(workflow_id)
        self.updates += 1

    def agent_ste(self) -> dict[str, float]:
        """Minimum STE per agent over live workflows."""
        return {agent: min(values) for agent, values in self._values.items()}

    def _drop(self, workflow_id: Hashable) -> None:
        for agent, value in self._per_workflow.pop(workflow_id, {}).items():
            values = self._values[agent]
            values[value] -= 1
            if not values[value]:
                del values[value]
                if not values:
                    del self._values[agent]
