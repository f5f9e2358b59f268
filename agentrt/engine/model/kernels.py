"""The few fused operations of a decoder step, in two implementations with one contract.

`PlainKernels` is the reference, in plain torch ops (any device). `CpuKernels`
(cpu_build.py) runs the same operations as fused C++ loops (cpu_kernels/*.cpp): on CPU a
decode step is dominated by per-op overhead across 30 layers, and these cut a layer's op
count several times (docs/notes/engine_kernels.md). `kernels_for(device)` picks the fast
one where it is built, the plain one elsewhere; tests/test_cpu_kernels.py checks both
agree.
"""

from __future__ import annotations

import os
from typing import Protocol

import torch
import torch.nn.functional as F

from agentrt.engine.model.cpu_build import CpuKernels, build_cpu_kernels
from agentrt.engine.model.decode_stack import DecodeStack, StackShape


class Kernels(Protocol):
    def rms_norm(self, x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
        """Hugging Face's RMSNorm over the last dimension."""

    def add_rms_norm_(
        self, residual: torch.Tensor, delta: torch.Tensor, weight: torch.Tensor, eps: float
    ) -> torch.Tensor:
        """`residual += delta` in place, then `rms_norm(residual)`."""

    def rope_(
        self,
        q: torch.Tensor,
        k: torch.Tensor,
        positions: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
    ) -> None:
        """Rotates q [T, H, D] and k [T, KVH, D] in place by the tables' rows `positions`
        (rotate-half convention; tables in float32 or the activations' dtype)."""

    def write_kv_(
        self,
        k: torch.Tensor,
        v: torch.Tensor,
        k_cache: torch.Tensor,
        v_cache: torch.Tensor,
        slot_mapping: torch.Tensor,
    ) -> None:
        """Token t's k, v [T, KVH, D] into slot `slot_mapping[t]` of the head-major caches."""

    def silu_mul(self, gate_up: torch.Tensor) -> torch.Tensor:
        """`silu(gate) * up` of the fused [..., 2I] projection -> [..., I]."""

    def decode_attention(
        self,
        q: torch.Tensor,
        k_cache: torch.Tensor,
        v_cache: torch.Tensor,
        block_tables: torch.Tensor,
        context_lens: torch.Tensor,
        page_size: int,
        scale: float,
    ) -> torch.Tensor:
        """One query token per sequence ([B, H, D], each token's heads contiguous) over
        its paged context: sequence b
        reads positions `0 .. context_lens[b]` through `block_tables[b]` (int64 pages)
        from head-major caches [KVH, slots, D]. Returns [B, H, D]."""

    def prefill_attention(
        self,
        q: torch.Tensor,
        k_cache: torch.Tensor,
        v_cache: torch.Tensor,
        block_table: torch.Tensor,
        context_start: int,
        page_size: int,
        scale: float,
    ) -> torch.Tensor:
        """A prefill chunk of one sequence: queries [Q, H, D] at positions
        `context_start ..`, causal over the sequence's cached KV (the chunk's own KV is
        already written) through `block_table` (int64 pages). Returns [Q, H, D]."""

    def tile_matvec_weight(self, weight: torch.Tensor) -> torch.Tensor:
        """The copy of `weight` [N, K] that `matvec` reads."""

    def matvec(
        self,
        x: torch.Tensor,
        tiled: torch.Tensor,
        bias: torch.Tensor | None,
        out_features: int,
    ) -> torch.Tensor:
        """`x @ weight.T + bias` for the few rows of a decode step (x [M, K]), from
        `tiled = tile_matvec_weight(weight)`."""

    def matvec_dtypes(self) -> frozenset[torch.dtype]:
        """The dtypes whose `matvec` beats the model's own linear (see `Linear`), for
        steps of at most `matvec_rows` rows."""

    matvec_rows: int

    def decode_stack(
        self, layers: list[list[torch.Tensor | None]], shape: StackShape
    ) -> DecodeStack | None:
        """All layers of small decode steps as one call (`DecodeStack`), or None where
        these kernels have none for these weights. `layers`: `DecoderLayer.stack_weights`."""


class PlainKernels:
    """The reference: torch ops only."""

    def rms_norm(self, x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
        if x.dtype == torch.float32:  # torch's fused kernel; bit-identical in fp32
            return F.rms_norm(x, weight.shape, weight, eps)
        v = x.float()
        normed = (v * torch.rsqrt(v.pow(2).mean(-1, keepdim=True) + eps)).to(x.dtype)
        return weight * normed

    def add_rms_norm_(
        self, residual: torch.Tensor, delta: torch.Tensor, weight: torch.Tensor, eps: float
    ) -> torch.Tensor:
        residual += delta
        return self.rms_norm(residual, weight, eps)

    def rope_(
        self,
        q: torch.Tensor,
        k: torch.Tensor,
        positions: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
    ) -> None:
        c, s = cos[positions].float().unsqueeze(1), sin[positions].float().unsqueeze(1)
        for x in (q, k):
            v = x.float()
            half = v.shape[-1] // 2
            rotated = torch.cat((-v[..., half:], v[..., :half]), dim=-1)
            x.copy_(v * c + rotated * s)

    def write_kv_(
        self,
        k: torch.Tensor,
        v: torch.Tensor,
        k_cache: torch.Tensor,
        v_cache: torch.Tensor,
        slot_mapping: torch.Tensor,
    ) -> None:
        k_cache.index_copy_(1, slot_mapping, k.transpose(0, 1))
        v_cache.index_copy_(1, slot_mapping, v.transpose(0, 1))

    def silu_mul(self, gate_up: torch.Tensor) -> torch.Tensor:
        gate, up = gate_up.float().chunk(2, dim=-1)
        return (F.silu(gate) * up).to(gate_up.dtype)

    def decode_attention(
        self,
        q: torch.Tensor,
        k_cache: torch.Tensor,
        v_cache: torch.Tensor,
        block_tables: torch.Tensor,
        context_lens: torch.Tensor,
        page_size: int,
        scale: float,
    ) -> torch.Tensor:
        batch, heads, dim = q.shape
        kv_heads = k_cache.shape[0]
        group = heads // kv_heads
        longest = int(context_lens.max())
        offsets = torch.arange(page_size, device=q.device)
        slots = (block_tables[:, :, None] * page_size + offsets).flatten(1)[:, :longest]
        k = k_cache.index_select(1, slots.flatten()).view(kv_heads, batch, longest, dim)
        v = v_cache.index_select(1, slots.flatten()).view(kv_heads, batch, longest, dim)
        qg = q.view(batch, kv_heads, group, dim).transpose(0, 1).float()
        scores = torch.einsum("hbgd,hbld->hbgl", qg, k.float()) * scale
        valid = torch.arange(longest, device=q.device)[None, :] < context_lens[:, None]
        scores.masked_fill_(~valid[None, :, None, :], float("-inf"))
        out = torch.einsum("hbgl,hbld->hbgd", torch.softmax(scores, dim=-1), v.float())
        return out.transpose(0, 1).reshape(batch, heads, dim).to(q.dtype)

    def prefill_attention(
        self,
        q: torch.Tensor,
        k_cache: torch.Tensor,
        v_cache: torch.Tensor,
        block_table: torch.Tensor,
        context_start: int,
        page_size: int,
        scale: float,
    ) -> torch.Tensor:
        q_len, heads, _ = q.shape
        end = context_start + q_len
        offsets = torch.arange(page_size, device=q.device)
        slots = (block_table[:, None] * page_size + offsets).flatten()[:end]
        k = k_cache.index_select(1, slots).unsqueeze(0)  # [1, KVH, L, D]
        v = v_cache.index_select(1, slots).unsqueeze(0)
        mask = None  # a chunk without cached context is plainly causal
        if context_start:
            mask = torch.ones(q_len, end, dtype=torch.bool, device=q.device).tril(context_start)
        out = F.scaled_dot_product_attention(
            q.transpose(0, 1).unsqueeze(0),
            k,
            v,
            attn_mask=mask,
            is_causal=mask is None,
            scale=scale,
            enable_gqa=heads != k.shape[1],
        )
        return out[0].transpose(0, 1)

    def tile_matvec_weight(self, weight: torch.Tensor) -> torch.Tensor:
        return weight

    def matvec(
        self,
        x: torch.Tensor,
        tiled: torch.Tensor,
        bias: torch.Tensor | None,
        out_features: int,
    ) -> torch.Tensor:
        return F.linear(x, tiled, bias)

    def matvec_dtypes(self) -> frozenset[torch.dtype]:
        return frozenset()

    matvec_rows = 0

    def decode_stack(
        self, layers: list[list[torch.Tensor | None]], shape: StackShape
    ) -> DecodeStack | None:
        return None


PLAIN = PlainKernels()


def kernels_for(device: torch.device) -> Kernels:
    """The fused CPU kernels on CPU where they build (set AGENTRT_PLAIN_KERNELS=1 to
    turn them off), the plain torch ops elsewhere."""
    if device.type != "cpu" or os.environ.get("AGENTRT_PLAIN_KERNELS") == "1":
        return PLAIN
    ops = build_cpu_kernels()
    return CpuKernels(ops) if ops is not None else PLAIN
