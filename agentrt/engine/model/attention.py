"""Attention over the paged KV cache with torch SDPA (CPU and CUDA alike)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from agentrt.engine.model.attention_metadata import AttentionMetadata


def paged_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    k_cache: torch.Tensor,
    v_cache: torch.Tensor,
    meta: AttentionMetadata,
    scale: float,
) -> torch.Tensor:
    """q: [T, H, D]; k, v: [T, KVH, D]; caches: [num_slots, KVH, D]. Writes this step's
    KV into the cache, then attends each sequence over its whole context. Returns [T, H, D]."""
    k_cache.index_copy_(0, meta.slot_mapping, k)
    v_cache.index_copy_(0, meta.slot_mapping, v)
    gqa = q.shape[1] != k.shape[1]
    nd = meta.num_decodes
    if nd == q.shape[0]:  # decode-only step: no scatter into an output buffer
        return _decode(q, k_cache, v_cache, meta, scale)
    out = torch.empty_like(q)
    if nd:
        out[:nd] = _decode(q[:nd], k_cache, v_cache, meta, scale)
    for chunk in meta.prefills:
        rows = slice(chunk.q_start, chunk.q_start + chunk.q_len)
        qp = q[rows].transpose(0, 1).unsqueeze(0)  # [1, H, q, D]
        if chunk.kv_slots is None:
            kp, vp = k[rows], v[rows]
        else:
            kp, vp = k_cache[chunk.kv_slots], v_cache[chunk.kv_slots]
        op = F.scaled_dot_product_attention(
            qp,
            kp.transpose(0, 1).unsqueeze(0),
            vp.transpose(0, 1).unsqueeze(0),
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

    Two batched matmuls with the query heads grouped per KV head (no GQA expansion):
    for one query per sequence this is several times faster than SDPA on CPU."""
    batch, heads, dim = q.shape
    k = k_cache[meta.decode_slots]  # [B, L, KVH, D]
    v = v_cache[meta.decode_slots]
    kv_heads = k.shape[2]
    q = q.view(batch, kv_heads, heads // kv_heads, dim)
    scores = torch.matmul(q, k.permute(0, 2, 3, 1)).float() * scale  # [B, KVH, G, L]
    if meta.decode_mask is not None:
        scores.masked_fill_(~meta.decode_mask, float("-inf"))
    probs = torch.softmax(scores, dim=-1).to(v.dtype)
    return torch.matmul(probs, v.transpose(1, 2)).reshape(batch, heads, dim)
