"""`CompletionClient`: what the runtime needs of a model backend.

A backend that subclasses it writes `complete` (and `generate` where the runtime streams)
and inherits no-op workflow notifications, overriding those it passes on.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from typing import TYPE_CHECKING, Protocol

from agentrt.engine.call_info import CallInfo
from agentrt.engine.outputs import RequestOutput
from agentrt.engine.sampling_params import SamplingParams

if TYPE_CHECKING:
    from agentrt.graph.step_graph import StepGraph


class CompletionClient(Protocol):
    """What the runtime needs from a model backend (`AsyncLLM` in process,
    `OpenAIBackend` on a server). Each model call is one `complete` (or, only when the
    runtime streams tokens, `generate`: the output after every step) with its
    `CallInfo`; the other methods tell the backend about the runtime's workflows, for
    backends that pass it on (a remote agentrt server), and are no-ops elsewhere."""

    async def complete(
        self, prompt: list[int], params: SamplingParams, call: CallInfo
    ) -> RequestOutput: ...

    def generate(
        self, prompt: list[int], params: SamplingParams, call: CallInfo
    ) -> AsyncGenerator[RequestOutput, None]: ...

    def workflow_started(self, workflow_id: str, graph: StepGraph) -> None:
        """A workflow instance began; `graph` is its step graph with agents named by
        their agent ids (what its calls' `CallInfo.agent_id` says)."""

    def workflow_finished(self, workflow_id: str) -> None:
        """The instance ended: completed, failed or cancelled."""

    def agent_started(self, workflow_id: str, agent_id: str) -> None:
        """A run of the agent began (before any of its calls)."""

    def agent_finished(self, workflow_id: str, agent_id: str, take: list[str] | None) -> None:
        """A run of the agent ended well, handing control to the agents `take` names
        (None: all its forward successors); a failed run ends its workflow instead."""

    def tool_paused(self, workflow_id: str, agent_id: str, tool: str) -> None:
        """The agent, having made a model call, waits for a tool (`ctx.tool`): its
        next call follows the tool's result."""

    def update_steps_to_execution(self, agent_ste: Mapping[str, float]) -> None:
        """Every agent id's steps-to-execution over all live workflows (0: ready or
        running); agent ids left out need nothing. A backend with a prefix cache orders
        eviction and prefetch by it; others ignore it."""
