"""A request inside the engine: its tokens, KV pages and progress."""

from __future__ import annotations

import enum
import itertools
from dataclasses import dataclass, field
from typing import Any

from agentrt.engine.sampling_params import SamplingParams


class SequenceStatus(enum.Enum):
    WAITING = "waiting"
    RUNNING = "running"
    FINISHED = "finished"


class FinishReason(str, enum.Enum):
    STOP = "stop"  # EOS, stop token or stop string
    LENGTH = "length"  # max_tokens or the model's context
    ABORT = "abort"
    ERROR = "error"


_ids = itertools.count()


@dataclass(eq=False)
class Sequence:
    """One request. `token_ids` holds prompt then output; KV exists for the first
    `num_computed_tokens`. The first `num_tree_pages` entries of `block_table` are pages
    owned by the radix tree (shared, locked via `tree_node`); the rest are owned here."""

    prompt_token_ids: list[int]
    params: SamplingParams
    request_id: str = field(default_factory=lambda: f"req-{next(_ids)}")
    agent_id: str | None = None
    prefix_len: int | None = None  # tokens of the agent's fixed prefix (the cacheable part)
    token_ids: list[int] = field(init=False)
    status: SequenceStatus = SequenceStatus.WAITING
    finish_reason: FinishReason | None = None
    error: str | None = None
    num_computed_tokens: int = 0
    num_cached_tokens: int = 0  # prompt tokens served from the prefix cache (last admission)
    num_device_cached_tokens: int = 0  # of those, already on the device (not loaded)
    block_table: list[int] = field(default_factory=list)
    num_tree_pages: int = 0
    tree_node: Any = None
    num_preemptions: int = 0
    admission: int = 0  # when the batcher last admitted it (`running` is in this order)
    arrival_time: float = 0.0
    priority: int = 0  # lower is admitted first (vLLM's convention)
    program_start: float | None = None  # when its workflow began (None: at arrival)
    pin_key: Any = None  # a KV pin it takes over: released when it is admitted
    first_token_time: float | None = None
    finish_time: float | None = None
    text: str = ""
    constraints: tuple = ()  # TokenConstraint per request, applied by the sampler
    logprobs: list | None = None  # TokenLogprob per output token, when params ask

    def __post_init__(self) -> None:
        self.token_ids = list(self.prompt_token_ids)

    @property
    def queue_key(self) -> tuple[int, float, float]:
        """Waiting-queue order: priority, then the workflow's start (program-level
        first come, first served), then the request's arrival."""
        start = self.arrival_time if self.program_start is None else self.program_start
        return (self.priority, start, self.arrival_time)

    @property
    def num_prompt_tokens(self) -> int:
        return len(self.prompt_token_ids)

    @property
    def num_tokens(self) -> int:
        return len(self.token_ids)

    @property
    def output_token_ids(self) -> list[int]:
        return self.token_ids[self.num_prompt_tokens :]

    @property
    def num_output_tokens(self) -> int:
        return len(self.token_ids) - self.num_prompt_tokens

    @property
    def is_prefilling(self) -> bool:
        """True until KV exists for every token but the last (the one fed next)."""
        return self.num_computed_tokens < self.num_tokens - 1

    @property
    def is_finished(self) -> bool:
        return self.status is SequenceStatus.FINISHED
