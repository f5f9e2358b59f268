"""Helpers for sim-engine tests."""

from __future__ import annotations

from agentrt.engine.llm_engine import LLMEngine


def sim_engine_state(engine: LLMEngine) -> tuple:
    """Everything a sim engine's fast paths must leave as the plain steps do: clock,
    stats, batch sizes, KV stats, free pages, prefix tree and busy time."""
    return (
        engine.clock.now(),
        engine.stats.as_dict(),
        list(engine.stats.batch_sizes),
        engine.kv.stats,
        sorted(engine.kv.allocator._free_heap),
        engine.kv.tree.pretty(),
        engine.runner.busy_seconds,  # type: ignore[attr-defined]
    )
