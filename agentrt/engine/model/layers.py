"""Small building blocks: RMSNorm's parameters and rotary position tables."""

from __future__ import annotations

import torch
from torch import nn
from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

from agentrt.engine.model.kernels import Kernels


class RMSNorm(nn.Module):
    """RMSNorm's weight and epsilon; `normalize` runs it through the model's kernels."""

    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim), requires_grad=False)
        self.eps = eps

    def normalize(
        self, x: torch.Tensor, delta: torch.Tensor | None, kernels: Kernels
    ) -> torch.Tensor:
        """rms_norm(x), after `x += delta` (in place) when a delta is given."""
        if delta is None:
            return kernels.rms_norm(x, self.weight, self.eps)
        return kernels.add_rms_norm_(x, delta, self.weight, self.eps)


def _rope_parameters(config) -> dict:
    params = getattr(config, "rope_parameters", None) or getattr(config, "rope_scaling", None)
    params = dict(params or {})
    params.setdefault("rope_type", params.get("type", "default"))
    if "rope_theta" not in params:
        params["rope_theta"] = getattr(config, "rope_theta", 10000.0)
    return params


class RotaryEmbedding(nn.Module):
    """Precomputed cos/sin tables, [max_positions, D], rows indexed by absolute position
    (in the model's dtype once the model is cast, as Hugging Face rounds them too)."""

    def __init__(self, config, head_dim: int, max_positions: int) -> None:
        super().__init__()
        params = _rope_parameters(config)
        rope_type = params["rope_type"]
        if rope_type == "default":
            base = params["rope_theta"]
            inv_freq = 1.0 / (base ** (torch.arange(0, head_dim, 2, dtype=torch.float) / head_dim))
            scaling = 1.0
        elif rope_type in ROPE_INIT_FUNCTIONS and rope_type != "dynamic":
            inv_freq, scaling = ROPE_INIT_FUNCTIONS[rope_type](config, "cpu")
        else:
            raise ValueError(f"unsupported rope type {rope_type!r}")
        positions = torch.arange(max_positions, dtype=torch.float)
        freqs = positions[:, None] * inv_freq[None, :].float()
        emb = torch.cat((freqs, freqs), dim=-1)
        self.register_buffer("cos", emb.cos() * scaling, persistent=False)
        self.register_buffer("sin", emb.sin() * scaling, persistent=False)
