"""`CosimConfig`: the replicas and engine limits of a co-simulation (`cosim`)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from agentrt.engine.config import EngineConfig, check_count

# Llama-3-8B on a 24 GB L4: ~16.1 GB of weights, ~1.5 GB activations/graphs -> ~6.5 GB KV.
L4_KV_TOKENS = 49_152


@dataclass
class CosimConfig:
    """Replicas and engine limits of a co-simulation (one `EngineConfig` per replica).

    ``policy`` None: ``kvflow`` with a host tier, else ``lru``. ``move_factor``: see `Router`
    (None: sticky only). ``implicit_decodes`` (decoders advance as a group) and
    ``fast_forward`` (pure-decode stretches in one call) give the same timeline.
    """

    profile: str = "l4-llama3-8b"
    replicas: int = 1
    kv_cache_tokens: int = L4_KV_TOKENS
    host_kv_cache_tokens: int = 0
    policy: str | None = None
    max_num_seqs: int = 256
    max_num_batched_tokens: int = 8192
    prefetch_k: int = 1
    move_factor: float | None = None
    max_tokens: int | None = None  # cap on every call's max_tokens
    fast_forward: bool = True  # needs implicit_decodes
    implicit_decodes: bool = True

    def __post_init__(self) -> None:
        self.replicas = check_count("CosimConfig.replicas", self.replicas, 1)
        if self.max_tokens is not None:
            self.max_tokens = check_count("CosimConfig.max_tokens", self.max_tokens, 1)
        if self.move_factor is not None and not (
            math.isfinite(self.move_factor) and self.move_factor >= 1
        ):
            raise ValueError(
                f"CosimConfig.move_factor must be a finite number >= 1, got {self.move_factor!r}"
            )
        self.engine_config()  # the engine's sizes fail here, before any replica starts

    @property
    def eviction_policy(self) -> str:
        if self.policy is not None:
            return self.policy
        return "kvflow" if self.host_kv_cache_tokens > 0 else "lru"

    def engine_config(self) -> EngineConfig:
        return EngineConfig(
            backend="sim",
            profile=self.profile,
            kv_cache_tokens=self.kv_cache_tokens,
            host_kv_cache_tokens=self.host_kv_cache_tokens,
            eviction_policy=self.eviction_policy,
            max_num_seqs=self.max_num_seqs,
            max_num_batched_tokens=self.max_num_batched_tokens,
            prefetch_k=self.prefetch_k,
        )
