"""Host-tier wiring between the engine config, the runner and the KV manager."""

from __future__ import annotations

from typing import Any

from agentrt.engine.config import EngineConfig
from agentrt.engine.runner import ModelRunner


def kv_tier_options(config: EngineConfig, runner: ModelRunner) -> dict[str, Any]:
    """Keyword arguments of `KVCacheManager` for the host tier. A runner without a
    `kv_transfer` gets bookkeeping-only transfers."""
    return {
        "num_host_pages": config.num_host_pages or 0,
        "transfer": runner.kv_transfer,
        "write_through": config.write_through,
        "prefetch_k": config.prefetch_k,
        "page_bytes": runner.kv_bytes_per_token * config.page_size,
    }
