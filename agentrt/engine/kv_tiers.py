"""Host-tier wiring between the engine config, the runner and the KV manager."""

from __future__ import annotations

from typing import Any

from agentrt.engine.config import EngineConfig
from agentrt.engine.runner import ModelRunner


def kv_tier_options(config: EngineConfig, runner: ModelRunner) -> dict[str, Any]:
    """Keyword arguments of `KVCacheManager` for the host tier. A runner without a
    `kv_transfer` (a cost model) gets bookkeeping-only transfers."""
    bytes_per_token = getattr(runner, "kv_bytes_per_token", 0)
    return {
        "num_host_pages": config.num_host_pages or 0,
        "transfer": getattr(runner, "kv_transfer", None),
        "write_through": config.write_through,
        "prefetch_k": config.prefetch_k,
        "page_bytes": bytes_per_token * config.page_size,
    }
