"""What a route hands the service once a request is checked: its choices and agent call."""

from __future__ import annotations

from typing import Protocol

from agentrt.serve.agents import Call
from agentrt.serve.choices import Job
from agentrt.serve.hints import RequestHints


class Plan(Protocol):
    """A planned request. `tool_names`: the tools its answer called, filled in by the
    handler as the answer is parsed (they set how long its KV stays pinned).
    `predicted_steps`: set at admission (`AgentTracker.started`); `pinned_until`: set
    when its answer pauses on a tool call (`Service.pause`)."""

    jobs: list[Job]
    hints: RequestHints
    call: Call
    tool_names: list[str]
    predicted_steps: float | None
    pinned_until: float | None
