"""The trace format: one JSON object per LLM call (JSONL), versioned.

A prompt is token ids (`prompt_token_ids`, what the runtime records) or a length plus
prefix-block hashes (`hash_ids`, one per `block_size` tokens, as Mooncake's: equal ids at
the same position mean a shared prefix). Checks across records are in `agentrt.trace.load`.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

TRACE_VERSION = 1

TokenId = Annotated[int, Field(ge=0)]


class CallRecord(BaseModel):
    """One LLM call as the runtime saw it. Times are seconds since the run started."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    version: int = TRACE_VERSION
    call_id: str = Field(min_length=1)
    workflow_id: str
    agent_id: str
    step: int = Field(ge=0, description="the agent run's step in its workflow")
    parents: list[str] = Field(default_factory=list, description="calls this one waited on")
    think_time_s: float = Field(0.0, ge=0, description="tool/agent time after parents ended")
    arrival_s: float = Field(ge=0)
    prompt_len: int = Field(ge=1)
    prefix_len: int = Field(0, ge=0, description="tokens of the agent's fixed prefix")
    prompt_token_ids: list[TokenId] | None = None
    hash_ids: list[int] | None = None
    block_size: int | None = Field(None, ge=1, description="tokens per hash block")
    output_len: int = Field(ge=0)
    cached_tokens: int = Field(0, ge=0)
    ttft_s: float | None = None
    latency_s: float | None = None
    error: str | None = None

    @field_validator("version")
    @classmethod
    def _known_version(cls, version: int) -> int:
        if version != TRACE_VERSION:
            raise ValueError(f"trace version {version} is not supported (this reader reads 1)")
        return version

    @model_validator(mode="after")
    def _prompt_is_consistent(self) -> CallRecord:
        if self.prompt_token_ids is not None and len(self.prompt_token_ids) != self.prompt_len:
            raise ValueError(
                f"prompt_token_ids has {len(self.prompt_token_ids)} ids but prompt_len is "
                f"{self.prompt_len}"
            )
        if self.hash_ids is not None:
            if self.block_size is None:
                raise ValueError("hash_ids need block_size")
            blocks = -(-self.prompt_len // self.block_size)
            if len(self.hash_ids) != blocks:
                raise ValueError(
                    f"{len(self.hash_ids)} hash_ids for {self.prompt_len} tokens in blocks of "
                    f"{self.block_size} (expected {blocks})"
                )
        if self.prefix_len > self.prompt_len:
            raise ValueError("prefix_len exceeds prompt_len")
        if self.call_id in self.parents:
            raise ValueError(f"call {self.call_id!r} lists itself as a parent")
        if len(set(self.parents)) != len(self.parents):
            raise ValueError("parents lists a call more than once")
        return self
