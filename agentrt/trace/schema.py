"""The trace format: one JSON object per LLM call (JSONL), versioned."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

TRACE_VERSION = 1


class CallRecord(BaseModel):
    """One LLM call as the runtime saw it. Times are seconds since the run started."""

    model_config = ConfigDict(extra="forbid")

    version: int = TRACE_VERSION
    call_id: str
    workflow_id: str
    agent_id: str
    step: int = Field(ge=0, description="the agent run's step in its workflow")
    parents: list[str] = Field(default_factory=list, description="calls this one waited on")
    think_time_s: float = Field(0.0, ge=0, description="tool/agent time after parents ended")
    arrival_s: float = Field(ge=0)
    prompt_len: int = Field(ge=1)
    prefix_len: int = Field(0, ge=0, description="tokens of the agent's fixed prefix")
    prompt_token_ids: list[int] | None = None
    output_len: int = Field(ge=0)
    cached_tokens: int = Field(0, ge=0)
    ttft_s: float | None = None
    latency_s: float | None = None
    error: str | None = None
