"""Attention over the paged KV cache (CPU and CUDA alike).

Caches are head-major, `[num_kv_heads, num_slots, head_dim]` per layer, so gathering a
sequence's slots yields `[KVH, L, D]` blocks that SDPA and batched matmuls consume
without another transpose copy.
"""

from __future__ import annotations

import torch

from agentrt.engine.model.attention_metadata import INVARIANT_BLOCK, AttentionMetadata
from agentrt.engine.model.invariant_attention import attend_in_blocks, invariant_prefill
from agentrt.engine.model.kernels import PLAIN, Kernels


def paged_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    k_cache: torch.Tensor,
    v_cache: torch.Tensor,
    meta: AttentionMetadata,
    scale: float,
    kernels: Kernels = PLAIN,
) -> torch.Tensor:
    """q: [T, H, D]; k, v: [T, KVH, D]. Writes this step's KV into the cache, then attends
    each sequence over its whole context through its pages (`kernels.decode_attention`,
    `kernels.prefill_attention`; batch-invariant mode has its own fixed-shape path).
    Returns [T, H, D]."""
    kernels.write_kv_(k, v, k_cache, v_cache, meta.slot_mapping)
    nd = meta.num_decodes
    if nd == q.shape[0]:  # decode-only step: no scatter into an output buffer
        return _decode(q, k_cache, v_cache, meta, scale, kernels)
    out = torch.empty_like(q)
    if nd:
        out[:nd] = _decode(q[:nd], k_cache, v_cache, meta, scale, kernels)
    for chunk in meta.prefills:
        rows = slice(chunk.q_start, chunk.q_start + chunk.q_len)
        if meta.batch_invariant:
            out[rows] = invariant_prefill(q[rows], k_cache, v_cache, chunk, scale)
        else:
            out[rows] = kernels.prefill_attention(
                q[rows],
                k_cache,
                v_cache,
                chunk.block_table,
                chunk.context_start,
                meta.page_size,
                scale,
            )
    return out


def _decode(
    q: torch.Tensor,
    k_cache: torch.Tensor,
    v_cache: torch.Tensor,
    meta: AttentionMetadata,
    scale: float,
    kernels: Kernels,
) -> torch.Tensor:
    """Single-token queries of B sequences over their contexts: [B, H, D]."""
    assert meta.decode_block_tables is not None and meta.decode_context_lens is not None
    if not meta.batch_invariant:
        return kernels.decode_attention(
            q,
            k_cache,
            v_cache,
            meta.decode_block_tables,
            meta.decode_context_lens,
            meta.page_size,
            scale,
        )
    # Batch-invariant: gathered, padded contexts reduced block by block; each KV head's
    # query heads grouped into one batched matmul (no GQA expansion).
    batch, heads, dim = q.shape
    kv_heads = k_cache.shape[0]
    group = heads // kv_heads
    length = -(-int(meta.decode_context_lens.max()) // INVARIANT_BLOCK) * INVARIANT_BLOCK
    slots = meta.decode_slots(length).reshape(-1)
    k = k_cache.index_select(1, slots).view(kv_heads * batch, length, dim)
    v = v_cache.index_select(1, slots).view(kv_heads * batch, length, dim)
    qg = q.view(batch, kv_heads, group, dim).transpose(0, 1).reshape(kv_heads * batch, group, dim)
    positions = torch.arange(length, device=q.device)
    valid = positions[None, :] < meta.decode_context_lens[:, None]
    valid = valid.view(1, batch, 1, length).expand(kv_heads, batch, 1, length)
    out = attend_in_blocks(qg, k, v, valid.reshape(kv_heads * batch, 1, length), scale)
    return out.view(kv_heads, batch, group, dim).transpose(0, 1).reshape(batch, heads, dim)
