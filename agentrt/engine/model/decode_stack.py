"""A decode step's decoder layers as one C++ call (CPU, bf16)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from agentrt.engine.model.attention_metadata import AttentionMetadata


@dataclass(frozen=True)
class StackShape:
    """The model's sizes a `DecodeStack` needs besides its weights."""

    heads: int
    kv_heads: int
    head_dim: int
    intermediate: int
    eps: float


class DecodeStack:
    """Every decoder layer of a decode-only step of at most `max_rows` tokens, run by
    cpu_kernels/decode_stack.cpp in one OpenMP region. From Python, a batch-1 step pays a
    parallel region and a Python call per kernel, ~10 per layer (docs/notes/
    engine_kernels.md). The result has the same bits as `CausalLM`'s layer loop, which
    stays the reference and runs every other step (tests/test_decode_stack.py)."""

    def __init__(self, native: object, max_rows: int) -> None:
        self._native = native
        self.max_rows = max_rows
        self._caches: list[tuple[torch.Tensor, torch.Tensor]] | None = None

    def runs(self, meta: AttentionMetadata, tokens: int) -> bool:
        """Whether this step is one the stack runs: decodes only, few enough of them."""
        return not meta.batch_invariant and meta.num_decodes == tokens <= self.max_rows

    def __call__(
        self,
        h: torch.Tensor,
        positions: torch.Tensor,
        kv_caches: list[tuple[torch.Tensor, torch.Tensor]],
        meta: AttentionMetadata,
        rope_tables: tuple[torch.Tensor, torch.Tensor],
        scale: float,
    ) -> torch.Tensor:
        """Runs the layers over the embedded tokens `h` [T, hidden], which becomes the
        residual stream (in place); returns the last layer's output (`delta`)."""
        if kv_caches is not self._caches:
            self._native.set_caches([k for k, _ in kv_caches], [v for _, v in kv_caches])
            self._caches = kv_caches
        return self._native.run(
            h,
            positions,
            meta.decode_block_tables,
            meta.decode_context_lens,
            meta.slot_mapping,
            meta.page_size,
            scale,
            *rope_tables,
        )
