"""`CosimConfig`: the replicas and engine limits of a co-simulation (`cosim`)."""

from __future__ import annotations

from dataclasses import dataclass

from agentrt.engine.config import EngineConfig

# Llama-3-8B on a 24 GB L4: ~16.1 GB of weights, ~1.5 GB activations/graphs -> ~6.5 GB KV.
L4_KV_TOKENS = 49_152


@dataclass
class CosimConfig:
    """Replicas and engine limits of a co-simulation (one `EngineConfig` per replica).

    ``policy`` None: ``kvflow`` with a host tier (``host_kv_cache_tokens > 0``), else
    ``lru``. ``move_factor``: see `Router` (None: sticky only). ``max_tokens`` caps
    every call's output length (None: the plan's). ``implicit_decodes``: decoders advance as a
    group (`SimLLMEngine.implicit_decodes`); with it, ``fast_forward`` runs stretches of
    pure-decode steps in one call (`SimLLMEngine.fast_forward`). Same timeline either way.
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
    fast_forward: bool = True  # pure-decode stretches in one call (needs implicit_decodes)
    implicit_decodes: bool = True

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
