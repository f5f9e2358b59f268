"""A runner wrapper that records what every step executed, for calibration and for
checking that two engines made the same scheduling decisions."""

from __future__ import annotations

from dataclasses import dataclass, field

from agentrt.engine.batcher import ScheduledBatch
from agentrt.engine.cost_model.model import StepFeatures
from agentrt.engine.runner import ModelRunner
from agentrt.engine.sampling_params import SamplingParams
from agentrt.engine.structured_params import StructuredOutputParams
from agentrt.kvmanager.transfer import KVTransfer

# One item as (request id, tokens computed before, tokens in this step).
ItemShape = tuple[str, int, int]


@dataclass
class StepRecord:
    features: StepFeatures
    items: tuple[ItemShape, ...]


@dataclass
class RecordingRunner(ModelRunner):
    """Delegates to `inner`; appends a `StepRecord` per executed batch to `steps`."""

    inner: ModelRunner
    steps: list[StepRecord] = field(default_factory=list)

    def execute(self, batch: ScheduledBatch) -> list[int]:
        items = tuple(
            (i.seq.request_id, i.seq.num_computed_tokens, i.num_new_tokens) for i in batch.items
        )
        self.steps.append(StepRecord(StepFeatures.of(batch), items))
        return self.inner.execute(batch)

    def forget(self, request_id: str) -> None:
        self.inner.forget(request_id)

    def constraints(self, params: SamplingParams) -> tuple:
        return self.inner.constraints(params)

    def compile_grammar(self, spec: StructuredOutputParams) -> None:
        self.inner.compile_grammar(spec)

    @property
    def uses_compute_thread(self) -> bool:  # type: ignore[override]
        return self.inner.uses_compute_thread

    @property
    def kv_bytes_per_token(self) -> int:  # type: ignore[override]
        return self.inner.kv_bytes_per_token

    @property
    def kv_transfer(self) -> KVTransfer | None:  # type: ignore[override]
        return self.inner.kv_transfer

    def __getattr__(self, name: str):
        # Runner-specific extras (clock, model, ...) pass through.
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)
