"""Engine configuration: model, device, KV pool size and batching limits."""

from __future__ import annotations

from dataclasses import dataclass

from agentrt.engine.device_check import check_device
from agentrt.kvmanager.policy import get_policy

BACKENDS = ("builtin", "sim")


@dataclass
class EngineConfig:
    """Settings of one engine instance.

    `num_pages` sizes the device KV pool; when None it is derived from `kv_cache_tokens`.
    `host_kv_cache_tokens` (or `num_host_pages`) sizes the host KV tier used by policies
    with a host tier (`hicache`, `kvflow`, `belady`); `ideal` instead adds those pages to
    the device pool. `write_through` copies new cache pages to host at insert;
    `prefetch_k`: prefetch prefixes of agents at most this many steps from running.
    `max_num_batched_tokens` is the per-step token budget shared by decodes and prefill
    chunks (chunked prefill); `max_num_seqs` caps the running batch.
    `batch_invariant` makes a sequence's tokens independent of what it is batched with
    (fixed-shape attention reductions, `model/invariant_attention.py`), so greedy runs
    that batch differently agree bit for bit; it costs some speed.
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
    host_kv_cache_tokens: int = 0
    num_host_pages: int | None = None
    write_through: bool = False
    prefetch_k: int = 1
    seed: int = 0
    batch_invariant: bool = False
    backend: str = "builtin"
    profile: str = "h100-llama3-8b"

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"unknown backend {self.backend!r}; use one of {BACKENDS}")
        if self.backend == "builtin":
            check_device(self.device)
        if self.page_size <= 0:
            raise ValueError(f"page_size must be positive, got {self.page_size}")
        if self.num_pages is None:
            self.num_pages = max(1, -(-self.kv_cache_tokens // self.page_size))
        if self.num_pages <= 0:
            raise ValueError(f"num_pages must be positive, got {self.num_pages}")
        if self.num_host_pages is None:
            self.num_host_pages = max(0, -(-self.host_kv_cache_tokens // self.page_size))
        if get_policy(self.eviction_policy).device_pool_includes_host:
            self.num_pages += self.num_host_pages
            self.num_host_pages = 0
        if self.max_num_batched_tokens <= 0:
            raise ValueError("max_num_batched_tokens must be positive")
        if self.max_num_seqs <= 0:
            raise ValueError("max_num_seqs must be positive")

    @property
    def kv_capacity_tokens(self) -> int:
        assert self.num_pages is not None
        return self.num_pages * self.page_size
