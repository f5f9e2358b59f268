"""Linear layers that use oneDNN's prepacked weights on CPU in bf16/fp16 (about twice as
fast as `F.linear` for a decoder step's small matrices, bit-identical: checked when
packing); anywhere else the plain kernel runs.

Batch invariance: a CPU bf16 matmul gives a row the same bits whatever the row count
only while the reduction is at most `MAX_INVARIANT_K` long; `split_reduction` cuts a
longer one into equal slices, summed left to right in float32.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from agentrt.engine.model.kernels import Kernels

_PACKABLE = (torch.bfloat16, torch.float16)
# `Kernels.matvec`: (x, the weight's tiled copy, bias, out_features) -> x @ weight.T + bias
MatvecFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor | None, int], torch.Tensor]
MAX_INVARIANT_K = 1024


def _pack(weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor | None:
    """oneDNN's prepacked `weight`, or None where unavailable or not bit-identical."""
    if weight.device.type != "cpu" or weight.dtype not in _PACKABLE:
        return None
    if not torch.backends.mkldnn.is_available():
        return None
    try:
        packed = torch.ops.mkldnn._reorder_linear_weight(weight, 1)
        probe = torch.randn(3, weight.shape[1], dtype=weight.dtype)
        got = torch.ops.mkldnn._linear_pointwise(probe, packed, bias, "none", [], "")
    except (RuntimeError, AttributeError):
        return None
    return packed if torch.equal(got, F.linear(probe, weight, bias)) else None


def _matmul(
    x: torch.Tensor, weight: torch.Tensor, packed: torch.Tensor | None, bias: torch.Tensor | None
) -> torch.Tensor:
    if packed is not None:
        return torch.ops.mkldnn._linear_pointwise(x, packed, bias, "none", [], "")
    return F.linear(x, weight, bias)


class Linear(nn.Linear):
    packed: torch.Tensor | None = None
    fast: tuple[torch.Tensor, torch.Tensor | None] | None = None  # (packed, bias) when unsplit
    # A kernel for a few rows (a decode step) that reads the weights faster than oneDNN's
    # GEMM: `use_matvec`; never in batch-invariant mode (a row's bits would then depend on
    # how many rows the step has).
    matvec: MatvecFn | None = None
    matvec_rows = 0
    # (the weight's tiled copy, bias, out_features), plain attributes
    matvec_args: tuple[torch.Tensor, torch.Tensor | None, int] | tuple[()] = ()
    # (input columns, weight slice, packed slice) when the reduction is split
    slices: list[tuple[slice, torch.Tensor, torch.Tensor | None]] | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.matvec is not None and 0 < x.shape[0] <= self.matvec_rows:
            return self.matvec(x, *self.matvec_args)
        if self.fast is not None:  # packed, unsplit: one op, no nn.Module attribute lookups
            return torch.ops.mkldnn._linear_pointwise(x, *self.fast, "none", [], "")
        if self.slices is None:
            return _matmul(x, self.weight, self.packed, self.bias)
        total = None
        for cols, weight, packed in self.slices:
            part = _matmul(x[..., cols].contiguous(), weight, packed, None).float()
            total = part if total is None else total.add_(part)
        if self.bias is not None:
            total += self.bias
        return total.to(x.dtype)

    # No hooks are ever registered on the model's modules: calling `forward` directly
    # skips nn.Module's hook dispatch, ~2% of a batch-1 decode step
    # (docs/notes/engine_kernels.md).
    __call__ = forward

    def pack(self) -> bool:
        """Switch to prepacked weights if that is available here and exact."""
        self.packed = _pack(self.weight, self.bias)
        self.fast = (self.packed, self.bias) if self.packed is not None else None
        return self.packed is not None

    def use_matvec(self, kernels: Kernels) -> bool:
        """Run steps of at most `kernels.matvec_rows` rows through `kernels.matvec` where
        it serves this weight's dtype."""
        if self.weight.dtype not in kernels.matvec_dtypes() or self.slices is not None:
            return False
        self.matvec, self.matvec_rows = kernels.matvec, kernels.matvec_rows
        self.matvec_args = (kernels.tile_matvec_weight(self.weight), self.bias, self.out_features)
        return True

    def split_reduction(self) -> bool:
        """Cut a reduction longer than `MAX_INVARIANT_K` into equal slices (see above)."""
        k = self.in_features
        if k <= MAX_INVARIANT_K:
            return False
        count = -(-k // MAX_INVARIANT_K)
        width = -(-k // count)
        self.fast = self.matvec = None
        self.slices = []
        for start in range(0, k, width):
            cols = slice(start, min(k, start + width))
            weight = self.weight[:, cols].contiguous()
            packed = _pack(weight, None) if self.packed is not None else None
            self.slices.append((cols, weight, packed))
        return True


def pack_linears(module: nn.Module) -> int:
    """Pack every `Linear` under `module`; returns how many were packed."""
    return sum(m.pack() for m in module.modules() if isinstance(m, Linear))


def use_matvec(module: nn.Module, kernels: Kernels | None) -> int:
    """`Linear.use_matvec(kernels)` on every `Linear` under `module` (None: off
    everywhere); returns how many use it."""
    linears = [m for m in module.modules() if isinstance(m, Linear)]
    if kernels is None:
        for m in linears:
            m.matvec, m.matvec_args = None, ()
        return 0
    return sum(m.use_matvec(kernels) for m in linears)


def split_long_reductions(module: nn.Module) -> int:
    """`split_reduction` on every `Linear` under `module`; returns how many were split."""
    return sum(m.split_reduction() for m in module.modules() if isinstance(m, Linear))
