"""Attention over the paged KV cache (CPU and CUDA alike).

Caches are head-major, `[num_kv_heads, num_slots, head_dim]` per layer, so gathering a
sequence's slots yields `[KVH, L, D]` blocks that SDPA and batched matmuls consume
without another transpose copy.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from agentrt.engine.model.attention_metadata import AttentionMetadata
from agentrt.engine.model.invariant_attention import (
    attend_in_blocks,
    invariant_prefill,
    masked_scores,
)


def paged_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    k_cache: torch.Tensor,
    v_cache: torch.Tensor,
    meta: AttentionMetadata,
    scale: float,
) -> torch.Tensor:
    """q: [T, H, D]; k, v: [T, KVH, D]. Writes this step's KV into the cache, then attends
    each sequence over its whole context. Returns [T, H, D]."""
    k_cache.index_copy_(1, meta.slot_mapping, k.transpose(0, 1))
    v_cache.index_copy_(1, meta.slot_mapping, v.transpose(0, 1))
    nd = meta.num_decodes
    if nd == q.shape[0]:  # decode-only step: no scatter into an output buffer
        return _decode(q, k_cache, v_cache, meta, scale)
    out = torch.empty_like(q)
    if nd:
        out[:nd] = _decode(q[:nd], k_cache, v_cache, meta, scale)
    gqa = q.shape[1] != k.shape[1]
    for chunk in meta.prefills:
        rows = slice(chunk.q_start, chunk.q_start + chunk.q_len)
        if meta.batch_invariant:
            out[rows] = invariant_prefill(q[rows], k_cache, v_cache, chunk, scale)
            continue
        if chunk.kv_slots is None:
            kp, vp = k[rows].transpose(0, 1), v[rows].transpose(0, 1)
        else:
            kp = k_cache.index_select(1, chunk.kv_slots)
            vp = v_cache.index_select(1, chunk.kv_slots)
        op = F.scaled_dot_product_attention(
            q[rows].transpose(0, 1).unsqueeze(0),  # [1, H, q, D]
            kp.unsqueeze(0),  # [1, KVH, L, D]
            vp.unsqueeze(0),
            attn_mask=chunk.mask,
            is_causal=chunk.mask is None,
            scale=scale,
            enable_gqa=gqa,
        )
        out[rows] = op[0].transpose(0, 1)
    return out


def _decode(
    q: torch.Tensor,
    k_cache: torch.Tensor,
    v_cache: torch.Tensor,
    meta: AttentionMetadata,
    scale: float,
) -> torch.Tensor:
    """Single-token queries of B sequences against their padded contexts: [B, H, D].

    Batched matmuls over (KV head, sequence) pairs with each KV head's query heads
    grouped (no GQA expansion); for one query per sequence this is several times faster
    than SDPA on CPU."""
    batch, heads, dim = q.shape
    kv_heads = k_cache.shape[0]
    group = heads // kv_heads
    length = meta.decode_slots.shape[1]
    slots = meta.decode_slots.view(-1)
    k = k_cache.index_select(1, slots).view(kv_heads * batch, length, dim)
    v = v_cache.index_select(1, slots).view(kv_heads * batch, length, dim)
    qg = q.view(batch, kv_heads, group, dim).transpose(0, 1).reshape(kv_heads * batch, group, dim)
    valid = None
    if meta.decode_mask is not None:
        valid = meta.decode_mask.view(1, batch, 1, length).expand(kv_heads, batch, 1, length)
        valid = valid.reshape(kv_heads * batch, 1, length)
    attend = attend_in_blocks if meta.batch_invariant else _attend_padded
    out = attend(qg, k, v, valid, scale).view(kv_heads, batch, group, dim)
    return out.transpose(0, 1).reshape(batch, heads, dim)


def _attend_padded(
    qg: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    valid: torch.Tensor | None,
    scale: float,
) -> torch.Tensor:
    """`attend_in_blocks`' contract with one softmax over the whole padded context."""
    scores = masked_scores(qg, k, valid, scale)
    return torch.bmm(torch.softmax(scores, dim=-1).to(v.dtype), v)
