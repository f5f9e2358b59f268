"""Batch-invariant attention: a token's output does not depend on what it is batched with.

The fast paths are not (the decode matmuls reduce over the batch's longest context, SDPA
blocks by the chunk's shape), and in bf16 those low bits flip greedy tokens. Here every
reduction has a fixed shape: contexts are padded to whole blocks of `BLOCK` positions
(masked), each block's weights meet their values in one matmul with K = `BLOCK` (CPU
bf16/fp16 matmuls give a row the same bits whatever the other rows, checked in the
tests), and blocks are summed left to right, so all-padding blocks add exact zeros.
Decodes and prefill rows share the function; the softmax runs in float32.
"""

from __future__ import annotations

import torch

from agentrt.engine.model.attention_metadata import INVARIANT_BLOCK as BLOCK
from agentrt.engine.model.attention_metadata import PrefillChunk


def masked_scores(
    qg: torch.Tensor, k: torch.Tensor, valid: torch.Tensor | None, scale: float
) -> torch.Tensor:
    """float32 ``scale * qg @ k^T`` ([N, M, L]), -inf where ``valid`` is False."""
    scores = torch.bmm(qg, k.transpose(1, 2)).float()
    scores *= scale
    if valid is not None:
        scores.masked_fill_(~valid, float("-inf"))
    return scores


def attend_in_blocks(
    qg: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    valid: torch.Tensor | None,
    scale: float,
) -> torch.Tensor:
    """qg: [N, M, D] queries (M rows share the context of entry n); k, v: [N, L, D] with
    L a multiple of `BLOCK`; valid: bool, broadcastable to [N, M, L]. Returns [N, M, D]."""
    n, m, dim = qg.shape
    blocks = k.shape[1] // BLOCK
    scores = masked_scores(qg, k, valid, scale)
    scores -= scores.amax(-1, keepdim=True)
    weights = scores.exp_().to(v.dtype).view(n, m, blocks, BLOCK)
    denominator = weights.float().sum(-1)  # [N, M, blocks]
    per_block = weights.transpose(1, 2).reshape(n * blocks, m, BLOCK)
    numerator = torch.bmm(per_block, v.view(n * blocks, BLOCK, dim)).view(n, blocks, m, dim)
    if blocks > 1:  # cumsum adds the blocks strictly left to right
        numerator = numerator.float().cumsum(1)[:, -1]
        denominator = denominator.cumsum(-1)[..., -1:]
    else:
        numerator = numerator[:, 0].float()
    return (numerator / denominator).to(v.dtype)


def invariant_prefill(
    q: torch.Tensor,
    k_cache: torch.Tensor,
    v_cache: torch.Tensor,
    chunk: PrefillChunk,
    scale: float,
) -> torch.Tensor:
    """One prefill chunk's queries [q_len, H, D] over its cached context (this step's KV
    is already written) -> [q_len, H, D].

    Rows go in groups of `BLOCK` positions, each over the context blocks it can see (a
    row's result does not depend on how many all-masked blocks follow), which skips the
    masked triangle and keeps the float32 scores small."""
    q_len, heads, dim = q.shape
    kv_heads = k_cache.shape[0]
    group = heads // kv_heads
    assert chunk.kv_slots is not None and chunk.mask is not None
    start = chunk.context_start
    out = torch.empty_like(q)
    row = 0
    while row < q_len:
        end = min(q_len, row + BLOCK - (start + row) % BLOCK)  # up to the next block edge
        width = -(-(start + end) // BLOCK) * BLOCK
        slots = chunk.kv_slots[:width]
        k = k_cache.index_select(1, slots)
        v = v_cache.index_select(1, slots)
        rows = end - row
        qg = q[row:end].view(rows, kv_heads, group, dim).permute(1, 2, 0, 3)
        qg = qg.reshape(kv_heads, group * rows, dim)
        valid = chunk.mask[row:end, :width].repeat(group, 1)  # rows ordered (group, pos)
        part = attend_in_blocks(qg, k, v, valid, scale).view(kv_heads, group, rows, dim)
        out[row:end] = part.permute(2, 0, 1, 3).reshape(rows, heads, dim)
        row = end
    return out
