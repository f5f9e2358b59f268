"""`run_simulation`: a town under several modes on a backend, compared (`agentrt simulate`).

- ``backend="sim"``: `cosimulate` on R cost-model replicas (virtual seconds).
- ``backend="builtin"``: R replicas of the model (loaded once; the prefix cache is reset
  between modes) driven by `simulate_async` and `LLMStepExecutor` (wall seconds); model
  outputs enter the world state. ``BuiltinConfig.warmup`` runs the first mode once,
  unmeasured, first: a cold process runs its first simulation ~1.5x slower on CPU.

Modes run in `mode_order`. The summary adds, per mode, ``% of oracle`` (oracle makespan /
mode makespan) and the ``ooo``/``sync`` speedup.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio

from agentrt.engine.async_llm import AsyncLLM
from agentrt.engine.config import EngineConfig, check_count
from agentrt.engine.llm_engine import LLMEngine
from agentrt.engine.prompt import PromptBuilder
from agentrt.scheduler.sim_modes import TrueDeps
from agentrt.simulation.async_driver import simulate_async
from agentrt.simulation.cosim import CosimConfig, cosimulate
from agentrt.simulation.llm_executor import LLMStepExecutor
from agentrt.simulation.mode_order import mode_order, run_in_order
from agentrt.simulation.result import SimResult
from agentrt.simulation.router import Router
from agentrt.simulation.ste import HintedScheduler, agent_key
from agentrt.simulation.unit_loop import scheduler_for
from agentrt.simulation.world import World

if TYPE_CHECKING:
    from agentrt.remote import RemoteSettings


@dataclass
class BuiltinConfig:
    """Real-engine settings: one `EngineConfig` per replica, ``max_tokens`` caps calls."""

    engine: EngineConfig
    replicas: int = 1
    max_tokens: int | None = None
    warmup: bool = False  # run the first mode once, unmeasured, before the measured runs

    def __post_init__(self) -> None:
        self.replicas = check_count("BuiltinConfig.replicas", self.replicas, 1)
        if self.max_tokens is not None:
            self.max_tokens = check_count("BuiltinConfig.max_tokens", self.max_tokens, 1)


async def _run_builtin(
    world: World,
    mode: str,
    steps: int,
    engines: Sequence[LLMEngine],
    max_tokens: int | None,
    true_deps: TrueDeps | None,
    record_deps: bool,
) -> SimResult:
    router = Router(len(engines))
    for i in range(world.num_agents):
        router.assign(agent_key(i))
    async with AsyncExitStack() as stack:
        llms = [await stack.enter_async_context(AsyncLLM(e)) for e in engines]
        builders = [PromptBuilder(e.tokenizer) for e in engines]
        executor = LLMStepExecutor(llms, builders, router=router, max_tokens=max_tokens)
        inner = scheduler_for(world, mode, steps, true_deps)
        sched = HintedScheduler(inner, steps, executor.publish_hints)
        res = await simulate_async(world, sched, steps, executor, record_deps=record_deps)
    stats = [e.stats for e in engines]
    reused = sum(s.prefill_tokens_reused for s in stats)
    computed = sum(s.prefill_tokens_computed for s in stats)
    res.extra = {
        "backend": "builtin",
        "replicas": len(engines),
        "policy": engines[0].config.eviction_policy,
        "dtype": engines[0].config.dtype,
        "batch_invariant": engines[0].config.batch_invariant,
        "prefix_hit_rate": reused / (reused + computed) if reused + computed else 0.0,
        "calls_per_replica": list(router.calls),
    }
    return res


@dataclass
class RemoteConfig:
    """A running OpenAI-compatible server (`backend="openai"`); `tokenizer`: its model's
    (prompts are built here, as token ids)."""

    settings: RemoteSettings
    tokenizer: Any
    max_tokens: int | None = None


async def _run_remote(
    world: World,
    mode: str,
    steps: int,
    remote: RemoteConfig,
    true_deps: TrueDeps | None,
    record_deps: bool,
) -> SimResult:
    from agentrt.remote import OpenAIBackend

    async with OpenAIBackend(remote.settings, remote.tokenizer) as client:
        executor = LLMStepExecutor(
            [client], [PromptBuilder(remote.tokenizer)], max_tokens=remote.max_tokens
        )
        inner = scheduler_for(world, mode, steps, true_deps)
        sched = HintedScheduler(inner, steps, executor.publish_hints)
        res = await simulate_async(world, sched, steps, executor, record_deps=record_deps)
        res.extra = {
            "backend": "openai",
            "server": remote.settings.base_url,
            "server_kind": client.kind,
            "model": client.model,
        }
    return res


def run_simulation(
    make_world: Callable[[], World],
    steps: int,
    modes: Sequence[str],
    *,
    backend: str = "sim",
    cosim: CosimConfig | None = None,
    builtin: BuiltinConfig | None = None,
    remote: RemoteConfig | None = None,
) -> dict[str, SimResult]:
    """Run each of ``modes`` on a fresh world, in `mode_order`; results keyed by mode, in
    ``modes`` order."""
    order = mode_order(modes)
    engines: list[LLMEngine] = []
    if backend == "builtin":
        builtin = builtin or BuiltinConfig(EngineConfig(batch_invariant=True))
        engines = [LLMEngine.from_config(builtin.engine) for _ in range(builtin.replicas)]
    elif backend == "openai" and remote is None:
        raise ValueError("backend 'openai' needs a RemoteConfig (the server)")
    elif backend not in ("sim", "openai"):
        raise ValueError(f"unknown backend {backend!r}; use builtin, sim or openai")

    def one(mode: str, deps: TrueDeps | None, record: bool) -> SimResult:
        if backend == "sim":
            return cosimulate(make_world(), mode, steps, cosim, true_deps=deps, record_deps=record)
        if backend == "openai":
            assert remote is not None
            return anyio.run(_run_remote, make_world(), mode, steps, remote, deps, record)
        assert builtin is not None
        for e in engines:
            e.reset_prefix_cache()
        return anyio.run(
            _run_builtin, make_world(), mode, steps, engines, builtin.max_tokens, deps, record
        )

    if backend == "builtin" and builtin is not None and builtin.warmup:
        one(order[0], None, False)
    return run_in_order(modes, one)


def speedups(sync_s: float, ooo_s: float, oracle_s: float) -> dict[str, float | None]:
    """ooo and oracle over sync, and ooo as % of oracle, from the three modes' makespans
    (None where a makespan is 0: nothing ran, e.g. a town asleep)."""
    return {
        "ooo_over_sync": sync_s / ooo_s if ooo_s else None,
        "oracle_over_sync": sync_s / oracle_s if oracle_s else None,
        "ooo_pct_of_oracle": 100 * oracle_s / ooo_s if ooo_s else None,
    }


def summarize(results: dict[str, SimResult]) -> dict[str, Any]:
    """JSON-ready summary: per-mode results plus % of oracle and ooo/sync speedup."""
    oracle = results.get("oracle")
    modes = {}
    for m, r in results.items():
        d = r.as_dict()
        d["pct_of_oracle"] = 100 * oracle.makespan / r.makespan if oracle and r.makespan else None
        modes[m] = d
    sync, ooo = results.get("sync"), results.get("ooo")
    hashes = {r.world_hash for r in results.values()}
    return {
        "modes": modes,
        "ooo_over_sync": sync.makespan / ooo.makespan if sync and ooo and ooo.makespan else None,
        "hashes_agree": len(hashes) == 1,
    }
