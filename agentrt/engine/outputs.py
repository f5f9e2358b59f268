"""What the engine reports per request, per step and in total."""

from __future__ import annotations

from collections.abc import AsyncIterable
from dataclasses import dataclass, field, fields


@dataclass
class RequestOutput:
    """A snapshot of one request after an engine step. `new_token_ids` are the tokens
    produced by this step (the streaming delta); `text` is the whole output so far."""

    request_id: str
    prompt_token_ids: list[int]
    token_ids: list[int]
    new_token_ids: list[int]
    text: str
    finished: bool
    finish_reason: str | None = None
    error: str | None = None
    num_cached_tokens: int = 0
    num_device_cached_tokens: int = 0  # of the cached ones, those not loaded from host
    arrival_time: float = 0.0
    first_token_time: float | None = None
    finish_time: float | None = None
    logprobs: list | None = None  # TokenLogprob per output token, when params ask


@dataclass
class EngineStats:
    """Running totals of what the engine did."""

    steps: int = 0
    prompt_tokens: int = 0
    prefill_tokens_computed: int = 0
    prefill_tokens_reused: int = 0
    decode_tokens: int = 0
    generated_tokens: int = 0
    preemptions: int = 0
    finished_requests: int = 0
    forward_seconds: float = 0.0
    batch_sizes: list[int] = field(default_factory=list, repr=False)

    @property
    def prefix_hit_rate(self) -> float:
        total = self.prefill_tokens_computed + self.prefill_tokens_reused
        return self.prefill_tokens_reused / total if total else 0.0

    def as_dict(self) -> dict:
        """The totals, the prefix hit rate and the mean batch size (not the sizes)."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "batch_sizes"}
        out["prefix_hit_rate"] = self.prefix_hit_rate
        sizes = self.batch_sizes
        out["mean_batch_size"] = sum(sizes) / len(sizes) if sizes else 0.0
        return out


async def final_output(outputs: AsyncIterable[RequestOutput]) -> RequestOutput:
    """The last (finished) output of a request's stream: what `complete` returns."""
    last: RequestOutput | None = None
    async for out in outputs:
        last = out
    assert last is not None and last.finished
    return last
