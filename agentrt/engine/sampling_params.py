"""Per-request sampling parameters, validated at construction: a bad value raises
`SamplingParamsError` (a pydantic `ValidationError`), one line naming the field, the
accepted range and the value given, before the request reaches a batch.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_core import ErrorDetails

from agentrt.engine.structured_params import StructuredOutputParams

# Below this the scaled float32 logits lose all but the top token (and 1e-45 overflows
# them to inf); use 0 for greedy.
MIN_TEMPERATURE = 1e-5
MAX_TEMPERATURE = 100.0
MAX_SEED = 2**64 - 1  # what torch.Generator.manual_seed takes
MAX_INT64 = 2**63 - 1

ACCEPTED: dict[str, str] = {
    "temperature": f"0 (greedy) or a number in [{MIN_TEMPERATURE:g}, {MAX_TEMPERATURE:g}]",
    "top_k": "an integer in [0, 2**63 - 1] (0: no top-k filter)",
    "top_p": "a number in (0, 1] (1: no top-p filter)",
    "seed": "None or an integer in [0, 2**64 - 1]",
    "max_tokens": "an integer in [1, 2**63 - 1]",
    "stop": "a non-empty string or a list of non-empty strings",
    "stop_token_ids": "a list of integer token ids in [0, vocabulary size)",
    "ignore_eos": "true or false",
    "min_tokens": "an integer in [0, 2**63 - 1]",
    "logprobs": "None or an integer in [0, 20]",
    "structured_output": "None or a structured-output constraint",
}


class SamplingParamsError(ValidationError):
    """Bad `SamplingParams` values; `str()` is one line per call: field, accepted range,
    value given."""

    def __str__(self) -> str:
        return "; ".join(_describe(e) for e in self.errors(include_url=False))


def _describe(error: ErrorDetails) -> str:
    field = str(error["loc"][0]) if error["loc"] else "SamplingParams"
    given = repr(error["input"])
    if len(given) > 60:
        given = given[:57] + "..."
    if error["type"] == "extra_forbidden":
        return f"SamplingParams has no field {field!r} (fields: {', '.join(ACCEPTED)})"
    if field not in ACCEPTED:
        return f"SamplingParams: {error['msg']}"
    return f"SamplingParams.{field} must be {ACCEPTED[field]}, got {given}"


class SamplingParams(BaseModel):
    """How to sample one request's output.

    `temperature == 0` is greedy; `top_k == 0` and `top_p == 1` disable those filters;
    `seed` makes sampling reproducible per request. Generation stops at `max_tokens`, EOS
    (unless `ignore_eos`), any of `stop_token_ids` or a `stop` string (cut from the text).
    `min_tokens` holds back EOS and the stop ids until that many tokens are out;
    `logprobs` (k) records each token's log-probability and the k likeliest
    alternatives; `structured_output` constrains the output to a grammar. Ranges: `ACCEPTED`.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    temperature: float = 0.0
    top_k: int = Field(default=0, ge=0, le=MAX_INT64)
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    seed: int | None = Field(default=None, ge=0, le=MAX_SEED)
    max_tokens: int = Field(default=64, ge=1, le=MAX_INT64)
    stop: tuple[str, ...] = ()
    stop_token_ids: tuple[int, ...] = ()
    ignore_eos: bool = False
    min_tokens: int = Field(default=0, ge=0, le=MAX_INT64)
    logprobs: int | None = Field(default=None, ge=0, le=20)
    structured_output: StructuredOutputParams | None = None

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise SamplingParamsError.from_exception_data(exc.title, exc.errors()) from None

    @field_validator("stop", mode="before")
    @classmethod
    def _stop_as_tuple(cls, value: object) -> object:
        if isinstance(value, str):
            value = (value,)
        if isinstance(value, (list, tuple)) and any(not s for s in value):
            raise ValueError(f"must be {ACCEPTED['stop']}")
        return value

    @field_validator("temperature")
    @classmethod
    def _temperature(cls, value: float) -> float:
        # NaN fails both comparisons; inf fails the upper bound
        if not (value == 0.0 or MIN_TEMPERATURE <= value <= MAX_TEMPERATURE):
            raise ValueError(f"must be {ACCEPTED['temperature']}")
        return value

    @field_validator("stop_token_ids")
    @classmethod
    def _stop_token_ids(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if any(not 0 <= t <= MAX_INT64 for t in value):
            raise ValueError(f"must be {ACCEPTED['stop_token_ids']}")
        return value

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0
