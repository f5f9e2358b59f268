"""The fused CPU kernels (cpu_kernels/*.cpp) as a `Kernels`: built once per machine and
source version by torch's extension builder, cached under ~/.cache/torch_extensions."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import torch

from agentrt.engine.model.decode_stack import DecodeStack, StackShape

log = logging.getLogger(__name__)

_SOURCE_DIR = Path(__file__).with_name("cpu_kernels")
_SOURCES = sorted(_SOURCE_DIR.glob("*.cpp"))
_built: object | None = None
_build_failed = False


def build_cpu_kernels() -> object | None:
    """The compiled extension, or None (logged once) where it cannot be built here."""
    global _built, _build_failed
    if _built is not None or _build_failed:
        return _built
    try:
        from torch.utils.cpp_extension import load

        _built = load(
            name=_extension_name(),
            sources=[str(path) for path in _SOURCES],
            # -fopenmp: at::parallel_for is inlined here and splits work only with OpenMP on
            extra_cflags=["-O3", "-march=native", "-fno-math-errno", "-fopenmp", *_vector_flags()],
            extra_ldflags=["-fopenmp"],
            verbose=False,
        )
    except Exception as exc:  # no compiler, no ninja, unsupported flags: the plain ops run
        _build_failed = True
        log.warning("CPU kernels unavailable, using plain torch ops: %s", str(exc)[:300])
    return _built


def _extension_name() -> str:
    """Named by the sources' place and hash: torch caches a build by name, and two
    checkouts (or versions) would otherwise rebuild over each other's."""
    digest = hashlib.sha256(str(_SOURCE_DIR.resolve()).encode())
    for path in sorted(_SOURCE_DIR.iterdir()):
        if path.suffix in (".cpp", ".h"):
            digest.update(path.name.encode() + path.read_bytes())
    return f"agentrt_cpu_kernels_{digest.hexdigest()[:12]}"


def _vector_flags() -> list[str]:
    """Compile ATen's `Vectorized` for the widest instruction set torch uses here."""
    capability = torch.backends.cpu.get_cpu_capability()
    if capability in ("AVX512", "AVX2"):
        return [f"-DCPU_CAPABILITY={capability}", f"-DCPU_CAPABILITY_{capability}"]
    return []


class CpuKernels:
    """`Kernels` as fused C++ loops (CPU tensors; float32, bfloat16, float16)."""

    def __init__(self, ops: object) -> None:
        self.rms_norm = ops.rms_norm
        self.add_rms_norm_ = ops.add_rms_norm_
        self.rope_ = ops.rope_
        self.write_kv_ = ops.write_kv_
        self.silu_mul = ops.silu_mul
        self.decode_attention = ops.decode_attention
        self.prefill_attention = ops.prefill_attention
        self.matvec = ops.matvec
        self.tile_matvec_weight = ops.tile_matvec_weight
        self._matvec_dtypes = frozenset({torch.bfloat16} if ops.has_bf16_matvec() else ())
        self.matvec_rows = int(ops.MATVEC_ROWS)
        self._ops = ops

    def matvec_dtypes(self) -> frozenset[torch.dtype]:
        return self._matvec_dtypes

    def decode_stack(
        self, layers: list[list[torch.Tensor | None]], shape: StackShape
    ) -> DecodeStack | None:
        weights = [w for layer in layers for w in layer if w is not None]
        if (
            torch.bfloat16 not in self._matvec_dtypes
            or any(w.dtype != torch.bfloat16 for w in weights)
            or shape.intermediate % 4
        ):
            return None
        native = self._ops.DecodeStack(
            layers, shape.heads, shape.kv_heads, shape.head_dim, shape.intermediate, shape.eps
        )
        return DecodeStack(native, self.matvec_rows)
