"""Workflow hints for the KV manager: each agent's steps-to-execution (STE).

The runtime publishes every workflow's STE map on each state change and hands the board's
`agent_ste()` to its client. The board keeps, per agent, the minimum STE over all live
workflows: an agent's prefix is shared by every instance of its workflow, so the nearest
instance decides.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping


class HintBoard:
    def __init__(self) -> None:
        self._per_workflow: dict[Hashable, dict[str, float]] = {}
        self.updates = 0

    def publish(self, workflow_id: Hashable, ste: Mapping[str, float]) -> None:
        """Replace one workflow's STE map (agent id -> steps until it can run)."""
        self._per_workflow[workflow_id] = dict(ste)
        self.updates += 1

    def end(self, workflow_id: Hashable) -> None:
        """A workflow finished, failed or was cancelled: its agents need nothing more."""
        del self._per_workflow[workflow_id]
        self.updates += 1

    def agent_ste(self) -> dict[str, float]:
        """Minimum STE per agent over live workflows."""
        best: dict[str, float] = {}
        for ste in self._per_workflow.values():
            for agent, value in ste.items():
                if value < best.get(agent, math.inf):
                    best[agent] = value
        return best
