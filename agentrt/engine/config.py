"""Engine configuration: model, device, KV pool size and batching limits."""

from __future__ import annotations

import operator
from dataclasses import dataclass

from agentrt.engine.device_check import check_device
from agentrt.kvmanager.policy import get_policy

BACKENDS = ("builtin", "sim")
PAGE_SIZE = 16  # tokens per KV page (the default)


def check_count(name: str, value: object, low: int, why: str = "") -> int:
    """`value` as an int >= `low`, or a one-line ValueError naming the field `name` (NaN,
    floats, strings and bools are not counts)."""
    rule = f"an integer >= {low}" + (f" ({why})" if why else "")
    try:
        if isinstance(value, bool):
            raise TypeError
        number = operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise ValueError(f"{name} must be {rule}, got {value!r}") from None
    if number < low:
        raise ValueError(f"{name} must be {rule}, got {value!r}")
    return number


@dataclass
class EngineConfig:
    """Settings of one engine instance.

    `num_pages` sizes the device KV pool (None: from `kv_cache_tokens`, rounded up to
    whole pages). `host_kv_cache_tokens` (or `num_host_pages`) sizes the host tier of
    policies that have one (`hicache`, `kvflow`, `belady`); `ideal` adds those pages to
    the device pool instead. `host_load_waits`: a waiting request whose host-held prefix
    finds no device room to load into waits at the head of the queue until running
    requests free room (False: it recomputes the prefix, as SGLang's HiCache does).
    `write_through` copies new cache pages to host at insert;
    `prefetch_k`: prefetch the prefixes of agents at most this many steps from running.
    `max_num_batched_tokens`: the per-step token budget (chunked prefill);
    `max_num_seqs`: the running batch's cap. `batch_invariant`: a sequence's tokens do not
    depend on its batch (`model/invariant_attention.py`; slower). `backend`: `builtin`
    (the torch model) or `sim` (the cost model `profile`, a name or JSON path).

    Sizes and counts are integers, checked here (ValueError naming the field): the device
    pool holds at least one page, the host tier and `prefetch_k` may be 0, the rest > 0.
    """

    model: str | None = None
    device: str = "cpu"
    dtype: str = "auto"  # auto: bfloat16 on CPU/CUDA, float32 where bf16 is unsupported
    page_size: int = PAGE_SIZE
    kv_cache_tokens: int = 32_768
    num_pages: int | None = None
    max_num_batched_tokens: int = 512
    max_num_seqs: int = 64
    enable_prefix_cache: bool = True
    eviction_policy: str = "lru"
    host_kv_cache_tokens: int = 0
    num_host_pages: int | None = None
    host_load_waits: bool = True
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
        self.page_size = check_count("EngineConfig.page_size", self.page_size, 1)
        if self.num_pages is None:
            self.kv_cache_tokens = check_count(
                "EngineConfig.kv_cache_tokens", self.kv_cache_tokens, self.page_size, "one page"
            )
            self.num_pages = -(-self.kv_cache_tokens // self.page_size)
        self.num_pages = check_count("EngineConfig.num_pages", self.num_pages, 1)
        if self.num_host_pages is None:
            self.host_kv_cache_tokens = check_count(
                "EngineConfig.host_kv_cache_tokens", self.host_kv_cache_tokens, 0
            )
            self.num_host_pages = -(-self.host_kv_cache_tokens // self.page_size)
        self.num_host_pages = check_count("EngineConfig.num_host_pages", self.num_host_pages, 0)
        self.max_num_batched_tokens = check_count(
            "EngineConfig.max_num_batched_tokens", self.max_num_batched_tokens, 1
        )
        self.max_num_seqs = check_count("EngineConfig.max_num_seqs", self.max_num_seqs, 1)
        self.prefetch_k = check_count("EngineConfig.prefetch_k", self.prefetch_k, 0)
        if get_policy(self.eviction_policy).device_pool_includes_host:
            self.num_pages += self.num_host_pages
            self.num_host_pages = 0

    @property
    def kv_capacity_tokens(self) -> int:
        assert self.num_pages is not None
        return self.num_pages * self.page_size
