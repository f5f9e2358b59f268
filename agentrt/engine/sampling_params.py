"""Per-request sampling parameters, validated at construction."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from agentrt.engine.structured_params import StructuredOutputParams


class SamplingParams(BaseModel):
    """How to sample one request's output.

    `temperature == 0` means greedy. `top_k == 0` and `top_p == 1` disable those filters.
    `seed` makes sampling reproducible per request. Generation stops at `max_tokens`, at an
    EOS token (unless `ignore_eos`), at any of `stop_token_ids`, or when the text contains
    one of `stop` (the stop string is cut from the text). `min_tokens` holds back EOS
    and the stop ids until that many tokens are out; `logprobs` (k) records each output
    token's log-probability and the k most likely alternatives; `structured_output`
    constrains the output to a grammar (see structured_output.py).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    temperature: float = Field(default=0.0, ge=0.0)
    top_k: int = Field(default=0, ge=0)
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    seed: int | None = None
    max_tokens: int = Field(default=64, ge=1)
    stop: tuple[str, ...] = ()
    stop_token_ids: tuple[int, ...] = ()
    ignore_eos: bool = False
    min_tokens: int = Field(default=0, ge=0)
    logprobs: int | None = Field(default=None, ge=0, le=20)
    structured_output: StructuredOutputParams | None = None

    @field_validator("stop", mode="before")
    @classmethod
    def _stop_as_tuple(cls, value: object) -> object:
        if isinstance(value, str):
            value = (value,)
        if isinstance(value, (list, tuple)) and any(not s for s in value):
            raise ValueError("stop strings must be non-empty")
        return value

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0
