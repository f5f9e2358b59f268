"""The runtime's records: one live workflow instance, one queued agent run, the results."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

import anyio

from agentrt.graph.decorators import Workflow
from agentrt.graph.workflow_state import WorkflowState


@dataclass
class RuntimeStats:
    """Running totals over every workflow of a runtime (for progress displays)."""

    workflows_done: int = 0
    llm_calls: int = 0
    output_tokens: int = 0


@dataclass
class WorkflowResult:
    workflow_id: str
    ok: bool
    output: Any
    results: dict[str, Any]
    error: BaseException | None
    llm_calls: int
    seconds: float
    input: Any = None


@dataclass(eq=False)
class WorkflowRun:
    """One live workflow instance. `state` decides which agents are ready; `error` is set
    once the instance fails or is cancelled (its queued agent runs are then dropped)."""

    workflow: Workflow
    workflow_id: str
    input: Any
    state: WorkflowState
    started_at: float
    results: dict[str, Any] = field(default_factory=dict)
    error: BaseException | None = None
    active: int = 0
    llm_calls: int = 0
    runs: int = 0
    finish_times: dict[str, float] = field(default_factory=dict)
    scopes: dict[Hashable, anyio.CancelScope] = field(default_factory=dict)
    # What an agent's next activation inherits from the agents that signalled it.
    pending_step: dict[str, int] = field(default_factory=dict)
    pending_frontier: defaultdict[str, set] = field(default_factory=lambda: defaultdict(set))
    ended: anyio.Event = field(default_factory=anyio.Event)
    result: WorkflowResult | None = None

    def make_result(self) -> WorkflowResult:
        """The result of this instance, now that it has ended."""
        exits = self.workflow.exits
        results = self.results
        output = results.get(exits[0]) if len(exits) == 1 else {e: results.get(e) for e in exits}
        ok = self.error is None
        seconds = time.perf_counter() - self.started_at
        return WorkflowResult(
            self.workflow_id,
            ok,
            output if ok else None,
            results,
            self.error,
            self.llm_calls,
            seconds,
            self.input,
        )

    async def wait(self) -> WorkflowResult:
        await self.ended.wait()
        assert self.result is not None
        return self.result


@dataclass(eq=False)
class AgentRun:
    """One activation of an agent, queued until the runtime starts it. `step` and
    `remaining` (steps its workflow has left, this one included) order the ready queue;
    `frontier` holds the model calls its first model call depends on."""

    run: WorkflowRun
    agent: str
    id: str
    step: int
    remaining: int
    frontier: set[str]
