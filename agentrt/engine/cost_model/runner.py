"""`CostModelRunner`: executes a batch by advancing a virtual clock, no tensors."""

from __future__ import annotations

from agentrt.engine.batcher import ScheduledBatch
from agentrt.engine.clock import VirtualClock
from agentrt.engine.cost_model.decode_group import DecodeGroup
from agentrt.engine.cost_model.model import CostModel, StepFeatures
from agentrt.engine.cost_model.profile import CostProfile
from agentrt.engine.cost_model.synthetic_tokens import RequestTokens, SyntheticTokens
from agentrt.engine.runner import ModelRunner

FIRST_TOKEN = 100  # synthetic tokens stay clear of the special tokens at the low ids
MAX_TOKEN = 32_000  # and inside any modern vocabulary, so a real tokenizer decodes them


class CostModelRunner(ModelRunner):
    """Same contract as the torch runner; time is modelled, tokens are synthetic.

    Each step advances `clock` by the profile's cost of the batch. A sampled token is a
    deterministic function of request id and position, never EOS, so `max_tokens`
    governs output length; `min_tokens` and structured output are ignored (the
    `ModelRunner` defaults). Host<->device copies queue on one link (`start_transfer`
    returns the virtual time a copy completes). Implicit decodes: a `DecodeGroup`, whose
    members each add one decode to a step's cost.
    """

    supports_implicit_decodes = True

    def __init__(
        self,
        profile: CostProfile,
        clock: VirtualClock | None = None,
        vocab_size: int | None = None,
    ) -> None:
        self.cost = CostModel(profile)
        self.clock = clock or VirtualClock()
        top = min(vocab_size or MAX_TOKEN, MAX_TOKEN)
        first = FIRST_TOKEN if top > FIRST_TOKEN else 0
        self.tokens = RequestTokens(SyntheticTokens(first, max(1, top - FIRST_TOKEN)))
        self._link_free_at = 0.0
        self.busy_seconds = 0.0
        self.kv_transfer = None  # set by sim_parts: a SimKVTransfer

    @property
    def kv_bytes_per_token(self) -> int:
        return self.cost.profile.kv_bytes_per_token

    def execute(self, batch: ScheduledBatch) -> list[int]:
        self._advance(self.cost.batch_seconds(batch))
        return self._sample(batch)

    def start_decode_group(self, page_size: int, max_model_len: int) -> DecodeGroup:
        self.decode_group = DecodeGroup(page_size, max_model_len, self.tokens)
        return self.decode_group

    def stop_decode_group(self) -> None:
        if self.decode_group is not None:
            self.decode_group.dissolve()
            self.decode_group = None

    def execute_with_group(self, batch: ScheduledBatch) -> list[int]:
        group = self.decode_group
        assert group is not None
        f = StepFeatures.of(batch)  # the explicit items; the members are decodes
        context = f.decode_context + group.context()
        members = StepFeatures(f.prefill_tokens, f.decodes + len(group), f.prefill_pairs, context)
        self._advance(self.cost.step_seconds(members))
        group.advance(self.clock.now())
        return self._sample(batch)

    def _advance(self, seconds: float) -> None:
        self.clock.advance(seconds)
        self.busy_seconds += seconds

    def _sample(self, batch: ScheduledBatch) -> list[int]:
        """The tokens the items of ``batch`` that reach their last token sample."""
        token = self.tokens.token
        return [token(i.seq.request_id, len(i.seq.token_ids)) for i in batch.items if i.samples]

    def forget(self, request_id: str) -> None:
        self.tokens.forget(request_id)

    def transfer_seconds(self, num_bytes: int) -> float:
        """Modelled duration of one host<->device copy of `num_bytes`."""
        return self.cost.transfer_seconds(num_bytes)

    def start_transfer(self, num_bytes: int) -> float:
        """Queue a copy on the host<->device link now; returns its virtual finish time."""
        start = max(self.clock.now(), self._link_free_at)
        self._link_free_at = start + self.cost.transfer_seconds(num_bytes)
        return self._link_free_at

    def wait_until(self, t: float) -> None:
        """Block the engine (advance the clock) until virtual time `t`, e.g. a load."""
        self.clock.advance_to(t)
