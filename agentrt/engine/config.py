"""Engine configuration: model, device, KV pool size and batching limits."""

from __future__ import annotations

from dataclasses import dataclass

BACKENDS = ("builtin", "sim")


@dataclass
class EngineConfig:
    """Settings of one engine instance.

    `num_pages` sizes the device KV pool; when None it is derived from `kv_cache_tokens`.
    `max_num_batched_tokens` is the per-step token budget shared by decodes and prefill
    chunks (chunked prefill); `max_num_seqs` caps the running batch.
    `backend` is `builtin` (the torch model) or `sim` (the cost model: same batcher and
    KV manager, a virtual clock advanced by `profile`, a profile name or JSON path).
    """

    model: str | None = None
    device: str = "cpu"
    dtype: str = "auto"  # auto: bfloat16 on CPU/CUDA, float32 where bf16 is unsupported
    page_size: int = 16
    kv_cache_tokens: int = 32_768
    num_pages: int | None = None
    max_num_batched_tokens: int = 512
    max_num_seqs: int = 64
    enable_prefix_cache: bool = True
    eviction_policy: str = "lru"
    seed: int = 0
    backend: str = "builtin"
    profile: str = "h100-llama3-8b"

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"unknown backend {self.backend!r}; use one of {BACKENDS}")
        if self.page_size <= 0:
            raise ValueError(f"page_size must be positive, got {self.page_size}")
        if self.num_pages is None:
            self.num_pages = max(1, -(-self.kv_cache_tokens // self.page_size))
        if self.num_pages <= 0:
            raise ValueError(f"num_pages must be positive, got {self.num_pages}")
        if self.max_num_batched_tokens <= 0:
            raise ValueError("max_num_batched_tokens must be positive")
        if self.max_num_seqs <= 0:
            raise ValueError("max_num_seqs must be positive")

    @property
    def kv_capacity_tokens(self) -> int:
        assert self.num_pages is not None
        return self.num_pages * self.page_size
