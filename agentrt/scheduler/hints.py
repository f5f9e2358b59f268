"""Workflow hints for the KV manager: each agent's steps-to-execution (STE).

The runtime publishes every workflow's STE map on each state change; the board keeps, per
agent, the minimum STE over all live workflows (an agent's prefix is shared by every
instance of its workflow, so the nearest instance decides). Listeners (the KV manager)
are told after every update.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Mapping

Listener = Callable[["HintBoard"], None]


class HintBoard:
    def __init__(self) -> None:
        self._per_workflow: dict[Hashable, dict[str, float]] = {}
        self._listeners: list[Listener] = []
        self.updates = 0

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def publish(self, workflow_id: Hashable, ste: Mapping[str, float]) -> None:
        """Replace one workflow's STE map (agent id -> steps until it can run)."""
        self._per_workflow[workflow_id] = dict(ste)
        self._changed()

    def end(self, workflow_id: Hashable) -> None:
        """A workflow finished, failed or was cancelled: its agents need nothing more."""
        if self._per_workflow.pop(workflow_id, None) is not None:
            self._changed()

    def agent_ste(self) -> dict[str, float]:
        """Minimum STE per agent over live workflows."""
        best: dict[str, float] = {}
        for ste in self._per_workflow.values():
            for agent, value in ste.items():
                if value < best.get(agent, math.inf):
                    best[agent] = value
        return best

    def due_next(self, k: int = 1) -> set[str]:
        """Agents at most `k` steps away (0 included: ready or running)."""
        return {a for a, s in self.agent_ste().items() if s <= k}

    def _changed(self) -> None:
        self.updates += 1
        for listener in self._listeners:
            listener(self)
