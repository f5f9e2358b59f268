"""How a scheduled batch is executed: the one thing that differs between runners."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from collections.abc import Sequence as Seq
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from agentrt.engine.batcher import ScheduledBatch
from agentrt.engine.sampling_params import SamplingParams
from agentrt.engine.structured_params import StructuredOutputParams
from agentrt.kvmanager.transfer import KVTransfer

if TYPE_CHECKING:
    from agentrt.engine.clock import Clock
    from agentrt.engine.cost_model.decode_group import DecodeGroup


class SamplingFailed(Exception):
    """Raised by `ModelRunner.execute` when the batch ran but sampling failed for some of
    its requests. `tokens` is what `execute` returns (the entries of failed requests are
    meaningless); `errors` maps each failed request id to its exception."""

    def __init__(self, tokens: list[int], errors: dict[str, Exception]) -> None:
        super().__init__(f"sampling failed for {len(errors)} request(s)")
        self.tokens = tokens
        self.errors = errors


class ModelRunner(ABC):
    """Executes one step. Contract: for every item of `batch` whose chunk reaches the
    sequence's last token (`item.samples`), return one sampled token id, in item order.
    The runner writes KV for all scheduled tokens into each sequence's `block_table`
    pages and never changes bookkeeping. A failure confined to some requests' sampling
    raises `SamplingFailed`; any other exception fails the step, and the engine re-runs
    parts of the batch (`isolation.py`), so `execute` must be safe to repeat for any
    subset of a batch. `uses_compute_thread`: steps run on the compute thread;
    `kv_bytes_per_token` (0: unknown) sizes byte counts; `kv_transfer`: device<->host
    copies (None: transfers are bookkeeping only). `supports_implicit_decodes`: while
    `decode_group` is set, its members decode one token in every `execute_with_group`
    step without being scheduled."""

    uses_compute_thread: bool = False
    kv_bytes_per_token: int = 0
    kv_transfer: KVTransfer | None = None
    supports_implicit_decodes: bool = False
    decode_group: DecodeGroup | None = None

    @abstractmethod
    def execute(self, batch: ScheduledBatch) -> list[int]: ...

    def forget(self, request_id: str) -> None:  # noqa: B027 - optional hook
        """Drop per-request state (e.g. a sampling generator) once a request ends."""

    def constraints(self, params: SamplingParams) -> tuple:
        """What this runner's sampling needs to honour ``params.min_tokens`` and
        ``params.structured_output`` for one request (kept as `Sequence.constraints`);
        raises ValueError for a spec it cannot honour. Any thread. Default: none, for
        runners whose tokens do not come from logits (they ignore both)."""
        return ()

    def compile_grammar(self, spec: StructuredOutputParams) -> None:  # noqa: B027
        """Prepare ``spec`` ahead of its requests (any thread); raises ValueError as
        `constraints` would. Default: nothing to prepare."""

    def start_decode_group(self, page_size: int, max_model_len: int) -> DecodeGroup:
        """Set `decode_group` to an empty group and return it (implicit decodes on)."""
        raise ValueError(f"{type(self).__name__} has no implicit decodes")

    def stop_decode_group(self) -> None:  # noqa: B027 - only with implicit decodes
        """Dissolve `decode_group` (its members' tokens catch up) and unset it."""

    def execute_with_group(self, batch: ScheduledBatch) -> list[int]:
        """`execute` with every member of `decode_group` decoding one token besides."""
        raise ValueError(f"{type(self).__name__} has no implicit decodes")


@dataclass
class BackendParts:
    """What a backend builds for an engine, `LLMEngine(config, **vars(parts))`: the runner
    and what the model says about itself (see `LLMEngine`)."""

    runner: ModelRunner
    tokenizer: Any = None
    eos_token_ids: Seq[int] = ()
    max_model_len: int | None = None
    vocab_size: int | None = None
    clock: Clock | None = None
    load_tokenizer: Callable[[], Any] | None = None
