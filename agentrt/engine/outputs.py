"""What the engine reports per request, per step and in total."""

from __future__ import annotations

from dataclasses import dataclass, field


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
        return {
            "steps": self.steps,
            "prompt_tokens": self.prompt_tokens,
            "prefill_tokens_computed": self.prefill_tokens_computed,
            "prefill_tokens_reused": self.prefill_tokens_reused,
            "prefix_hit_rate": self.prefix_hit_rate,
            "decode_tokens": self.decode_tokens,
            "generated_tokens": self.generated_tokens,
            "preemptions": self.preemptions,
            "finished_requests": self.finished_requests,
            "forward_seconds": self.forward_seconds,
            "mean_batch_size": (
                sum(self.batch_sizes) / len(self.batch_sizes) if self.batch_sizes else 0.0
            ),
        }
