"""`agentrt bench kvflow`: every eviction policy on the same KVFlow-shaped workload.

For each policy a fresh engine (same pools and link) runs the workload through the real
`Runtime`, whose STE reaches the engine's KV manager. The workflow runs one extra round
first, as warm-up: the measurement window opens when every instance has started its
second round (the steady state of a long-lived loop). `e2e_s` is the window's length by
the engine's clock (wall on `builtin`, virtual on `sim`); the KV stats are those accrued
inside it. `ideal` gets a device pool of device + host pages.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from typing import Any

import anyio

from agentrt.bench.kvflow_workloads import IdsTokenizer, KVFlowWorkload
from agentrt.engine.async_llm import AsyncLLM
from agentrt.engine.call_info import CallInfo
from agentrt.engine.completion_client import CompletionClient
from agentrt.engine.config import EngineConfig
from agentrt.engine.llm_engine import LLMEngine
from agentrt.engine.prompt import PromptBuilder
from agentrt.graph.decorators import Workflow
from agentrt.kvmanager.policies.belady import BeladyPolicy
from agentrt.kvmanager.stats import KVStats
from agentrt.scheduler.runtime import Runtime

POLICIES = ("lru", "hicache", "kvflow", "belady", "ideal")


class RecordingClient(CompletionClient):
    """The runtime's completion client: forwards the calls and the steps-to-execution to
    `AsyncLLM` (whose other notifications are no-ops, as here), keeps each call's output
    token ids by prompt (so runs under different policies can be compared)."""

    def __init__(self, llm: AsyncLLM) -> None:
        self.llm = llm
        self.outputs: dict[tuple[int, ...], list[int]] = {}

    def update_steps_to_execution(self, agent_ste) -> None:
        self.llm.update_steps_to_execution(agent_ste)

    async def complete(self, prompt, params, call: CallInfo):
        out = await self.llm.complete(prompt, params, call)
        self.outputs[tuple(prompt)] = list(out.token_ids)
        return out


def pool_sizes(workload: KVFlowWorkload, device_prefixes: int, page_size: int) -> dict:
    """Device pool: ``device_prefixes`` agents' prefixes plus room for every instance's
    running request (its dynamic part and output, two pages of slack); host pool: every
    prefix plus every call's suffix (so ``ideal``'s device pool holds everything)."""
    pages = lambda n: -(-n // page_size)  # noqa: E731
    own = pages(workload.dynamic + workload.output) + 2
    device = device_prefixes * pages(workload.prefix) + workload.instances * own
    calls = workload.agents * (workload.rounds + 1) * workload.instances  # warm-up + timed
    host = workload.agents * pages(workload.prefix) + calls * own
    return {"num_pages": device, "num_host_pages": host}


class MeasurementWindow:
    """Opens (clock and KV stats snapshot) once every instance has started round
    `from_round`; call `close` at the end."""

    def __init__(self, engine: LLMEngine, instances: int, from_round: int) -> None:
        self.engine = engine
        self.instances = instances
        self.from_round = from_round
        self._started: set[int] = set()
        self.start_s: float | None = None
        self.stats_before: KVStats | None = None
        if from_round <= 1:
            self._open()

    def on_round_start(self, instance: int, round_: int) -> None:
        if round_ == self.from_round and self.start_s is None:
            self._started.add(instance)
            if len(self._started) == self.instances:
                self._open()

    def _open(self) -> None:
        self.start_s = self.engine.clock.now()
        self.stats_before = self.engine.kv.stats.snapshot()

    def close(self) -> tuple[float, KVStats]:
        if self.start_s is None or self.stats_before is None:
            raise RuntimeError("the measurement window never opened")
        return self.engine.clock.now() - self.start_s, self.engine.kv.stats - self.stats_before


async def _run(engine: LLMEngine, workflow: Workflow, workload: KVFlowWorkload) -> dict:
    async with AsyncLLM(engine) as llm:
        client = RecordingClient(llm)
        runtime = Runtime(client, PromptBuilder(IdsTokenizer()))
        results = await runtime.run(workflow, workload.inputs())
    failed = [r.error for r in results if not r.ok]
    if failed:
        raise RuntimeError(f"workflow failed: {failed[0]!r}")
    return client.outputs


def run_policy(config: EngineConfig, workload: KVFlowWorkload, warmup: bool = True) -> dict:
    """One policy: the workflow with a warm-up round (optional) and the measured rounds.
    Returns metrics + outputs."""
    engine = LLMEngine.from_config(config)
    rounds = workload.rounds + (1 if warmup else 0)
    policy = engine.kv.policy
    if isinstance(policy, BeladyPolicy):  # it is told every call of the run, in order
        policy.set_future(workload.future_calls(rounds))
    window = MeasurementWindow(engine, workload.instances, 2 if warmup else 1)
    outputs = anyio.run(_run, engine, workload.workflow(rounds, window.on_round_start), workload)
    seconds, stats = window.close()
    engine.check_integrity()
    return {
        "e2e_s": seconds,
        "device_hit_rate": stats.device_hit_rate,
        "host_hit_rate": stats.host_hit_rate,
        "recomputed_tokens": stats.recomputed_tokens,
        "loaded_bytes": stats.loaded_bytes,
        "prefetch_late": stats.prefetch_late,
        "outputs": outputs,
    }


def _ratio(result: dict, other: str) -> float | None:
    policies = result["policies"]
    if other not in policies or "kvflow" not in policies:
        return None
    return policies[other]["e2e_s"] / policies["kvflow"]["e2e_s"]


def run_kvflow_bench(
    workload: KVFlowWorkload,
    backend: str = "sim",
    profile: str = "h100-llama3-8b",
    policies: Sequence[str] = POLICIES,
    device_prefixes: int = 3,
    warmup: bool = True,
    progress: Callable[[str], None] | None = None,
    repeats: int = 1,
    **config: Any,
) -> dict:
    """Run every policy in ``policies`` on ``workload``; the JSON-ready result. With
    ``repeats`` > 1 each policy runs that many times, the order rotated each time, and
    reports the median e2e (all runs in ``e2e_runs_s``)."""
    settings: dict[str, Any] = {
        "page_size": 16,
        "max_num_batched_tokens": 2048,
        "max_num_seqs": max(8, workload.instances),
    }
    settings.update(pool_sizes(workload, device_prefixes, settings["page_size"]))
    settings.update(config)
    shape = ("agents", "instances", "rounds", "prefix", "dynamic", "output")
    sizes = {k: vars(workload)[k] for k in shape} | {
        "device_pool_tokens": settings["num_pages"] * settings["page_size"],
        "host_pool_tokens": settings["num_host_pages"] * settings["page_size"],
        "device_prefixes": device_prefixes,
        "warmup_round": warmup,
    }
    result: dict[str, Any] = {
        "scenario": workload.scenario,
        "backend": backend,
        "profile": profile if backend == "sim" else None,
        "sizes": sizes,
        "policies": {},
    }
    outputs: dict[str, dict] = {}
    runs: dict[str, list[float]] = {name: [] for name in policies}
    for rep in range(repeats):
        # each repetition rotates the order, so no policy always runs first or last
        shift = rep % len(policies)
        for name in list(policies[shift:]) + list(policies[:shift]):
            cfg = EngineConfig(backend=backend, profile=profile, eviction_policy=name, **settings)
            row = run_policy(cfg, workload, warmup)
            outputs[f"{name}/{rep}"] = row.pop("outputs")
            runs[name].append(row["e2e_s"])
            result["policies"].setdefault(name, row)
            if progress:
                progress(f"{name}: {row['e2e_s']:.3f}s device hit {row['device_hit_rate']:.3f}")
    for name, seconds in runs.items():
        row = result["policies"][name]
        row["e2e_s"] = statistics.median(seconds)
        row["e2e_runs_s"] = seconds
    result["policies"] = {name: result["policies"][name] for name in policies}
    result["kvflow_over_lru"] = _ratio(result, "lru")
    result["kvflow_over_hicache"] = _ratio(result, "hicache")
    ideal = _ratio(result, "ideal")
    result["kvflow_vs_ideal"] = None if ideal is None else 1 / ideal  # kvflow e2e / ideal e2e
    p = result["policies"]
    result["kvflow_minus_belady_hit_rate_pp"] = (
        100 * (p["kvflow"]["device_hit_rate"] - p["belady"]["device_hit_rate"])
        if "kvflow" in p and "belady" in p
        else None
    )
    result["identical_outputs"] = _identical(outputs, exact=backend != "sim")
    return result


def _identical(outputs: dict[str, dict], exact: bool) -> bool:
    """Same prompts under every policy and, per prompt, the same output token ids
    (``exact``) or at least the same number of tokens (sim tokens are synthetic)."""
    seen = [{p: t if exact else len(t) for p, t in run.items()} for run in outputs.values()]
    return all(run == seen[0] for run in seen)
