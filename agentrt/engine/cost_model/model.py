"""The cost of a scheduled batch under a profile (see `profile.py` for the formula)."""

from __future__ import annotations

from typing import NamedTuple

from agentrt.engine.batcher import ScheduledBatch
from agentrt.engine.cost_model.profile import CostProfile


class StepFeatures(NamedTuple):
    """What a step's time depends on. Items of one token are decodes (as in attention)."""

    prefill_tokens: int
    decodes: int
    prefill_pairs: int  # (query, key) pairs attended by prefill chunks, causal
    decode_context: int  # KV tokens read by decodes (their context incl. the new token)

    @classmethod
    def of(cls, batch: ScheduledBatch) -> StepFeatures:
        """Features of `batch` before it runs (computed tokens not yet advanced)."""
        tokens = decodes = pairs = context = 0
        for item in batch.items:
            n = item.num_new_tokens
            done = item.seq.num_computed_tokens
            if n == 1:
                decodes += 1
                context += done + 1
            else:
                tokens += n
                pairs += n * done + n * (n + 1) // 2
        return cls(tokens, decodes, pairs, context)


class CostModel:
    """Seconds per step and per transfer. Monotone non-decreasing in every feature."""

    def __init__(self, profile: CostProfile) -> None:
        self.profile = profile
        p, d = profile.prefill, profile.decode
        self._overhead = profile.step_overhead_s
        self._weights = d.weights_read_s
        self._overlap = profile.overlap_weights_and_compute
        self._per_token, self._per_pair = p.per_token_s, p.per_pair_s
        self._per_seq, self._per_ctx = d.per_seq_s, d.per_context_token_s
        self._bandwidth = profile.host_device_bytes_per_s
        self._latency = profile.transfer_latency_s

    def step_seconds(self, f: StepFeatures) -> float:
        linear = self._per_token * f.prefill_tokens + self._per_seq * f.decodes
        core = max(self._weights, linear) if self._overlap else self._weights + linear
        return (
            self._overhead
            + core
            + self._per_pair * f.prefill_pairs
            + self._per_ctx * f.decode_context
        )

    def batch_seconds(self, batch: ScheduledBatch) -> float:
        return self.step_seconds(StepFeatures.of(batch))

    def transfer_seconds(self, num_bytes: int) -> float:
        """One host<->device copy of `num_bytes` (0 bytes cost nothing)."""
        if num_bytes <= 0:
            return 0.0
        return self._latency + num_bytes / self._bandwidth
