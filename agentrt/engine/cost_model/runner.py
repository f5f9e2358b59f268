"""`CostModelRunner`: executes a batch by advancing a virtual clock, no tensors."""

from __future__ import annotations

import zlib
from collections.abc import Iterable

from agentrt.engine.batcher import ScheduledBatch
from agentrt.engine.clock import VirtualClock
from agentrt.engine.cost_model.decode_group import DecodeGroup
from agentrt.engine.cost_model.model import CostModel, StepFeatures
from agentrt.engine.cost_model.profile import CostProfile
from agentrt.engine.cost_model.synthetic_tokens import SyntheticTokens
from agentrt.engine.runner import ModelRunner
from agentrt.engine.sequence import Sequence

FIRST_TOKEN = 100  # synthetic tokens stay clear of the special tokens at the low ids
MAX_TOKEN = 32_000  # and inside any modern vocabulary, so a real tokenizer decodes them


class CostModelRunner(ModelRunner):
    """Same contract as the torch runner; time is modelled, tokens are synthetic.

    Each step advances `clock` by the profile's cost of the batch. A sampled token is a
    deterministic function of the request id and position, never an EOS token (the sim
    engine has none), so `max_tokens` governs output length. Host<->device copies are
    modelled on one link: `start_transfer` queues a copy behind earlier ones and returns
    when it completes, in virtual seconds; the caller decides whether to wait for it.
    Its implicit decodes' members are a `DecodeGroup`: a step costs its batch plus one
    decode per member, and moves the group on.
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
        self.tokens = SyntheticTokens(
            FIRST_TOKEN if top > FIRST_TOKEN else 0, max(1, top - FIRST_TOKEN)
        )
        self._link_free_at = 0.0
        self._hashes: dict[str, int] = {}  # request id -> crc32, until `forget`
        self.busy_seconds = 0.0
        self.kv_transfer = None  # set by build_sim_engine: a SimKVTransfer

    @property
    def kv_bytes_per_token(self) -> int:
        return self.cost.profile.kv_bytes_per_token

    def execute(self, batch: ScheduledBatch) -> list[int]:
        self._advance(self.cost.batch_seconds(batch))
        return self._sample(batch)

    def start_decode_group(self, page_size: int, max_model_len: int) -> DecodeGroup:
        self.decode_group = DecodeGroup(page_size, max_model_len, self.append_tokens)
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
        out = []
        for item in batch.items:
            if item.samples:
                seq = item.seq
                out.append(token(self._hash(seq.request_id), len(seq.token_ids)))
        return out

    def _hash(self, request_id: str) -> int:
        h = self._hashes.get(request_id)
        if h is None:
            h = self._hashes[request_id] = zlib.crc32(request_id.encode())
        return h

    def forget(self, request_id: str) -> None:
        self._hashes.pop(request_id, None)

    def token_for(self, request_id: str, position: int) -> int:
        """The synthetic token sampled at `position` of request `request_id`."""
        return self.tokens.token(self._hash(request_id), position)

    def append_tokens(self, seqs: Iterable[Sequence], n: int) -> None:
        """Append to each sequence the ``n`` tokens it samples next (`token_for` at each
        new position: the tokens of its implicit decodes)."""
        for seq in seqs:
            ids = seq.token_ids
            ids.extend(self.tokens.run(self._hash(seq.request_id), len(ids), n))

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
