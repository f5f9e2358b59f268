"""`agentrt replay`: one trace, one fresh engine per KV policy, results side by side.

Default engine sizes per backend (`engine_config`), the host tier 4x the device pool:

- `sim` (`h100-llama3-8b`: Llama-3-8B on an H100 80 GB, 128 KiB of KV per token): 450,000
  device tokens (59 GB: what 95 % of 80 GB leaves after weights and activations), steps of
  up to 8,192 tokens (vLLM's default on H100), at most 64 running requests.
- `builtin`: the engine's own defaults (32,768 device tokens, 512-token steps).

Several policies run in parallel worker processes (`jobs`); each reads the trace itself.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace

from agentrt.engine.config import EngineConfig
from agentrt.interrupts import worker_signals
from agentrt.trace.learned_hints import LEARNED_POLICY, LearnedReplayHints
from agentrt.trace.load import load_trace
from agentrt.trace.replay import Replayer
from agentrt.trace.replay_options import ReplayOptions
from agentrt.trace.timeline import Timeline

SIM_DEFAULTS = {
    "kv_cache_tokens": 450_000,
    "host_kv_cache_tokens": 1_800_000,
    "max_num_batched_tokens": 8192,
    "max_num_seqs": 64,
}
BUILTIN_DEFAULTS = {"kv_cache_tokens": 32_768, "host_kv_cache_tokens": 131_072}


@dataclass
class ReplayJob:
    """Everything one policy's replay needs (picklable: it crosses to a worker)."""

    trace: str
    backend: str = "sim"
    policy: str = "lru"
    fmt: str = "auto"
    skip_bad: bool = False
    max_requests: int | None = None
    profile: str | None = None
    model: str | None = None
    device: str = "cpu"
    kv_cache_tokens: int | None = None
    host_kv_cache_tokens: int | None = None
    host_load_waits: bool = True  # False: recompute a host prefix with no room to load
    options: ReplayOptions = field(default_factory=ReplayOptions)
    timeline: bool = False
    graph: str | None = None  # kvflow-learned: a learned graph to start from


def engine_config(job: ReplayJob) -> EngineConfig:
    """The engine for `job`: backend defaults, then the job's explicit sizes."""
    sizes = dict(SIM_DEFAULTS if job.backend == "sim" else BUILTIN_DEFAULTS)
    if job.kv_cache_tokens is not None:
        sizes["kv_cache_tokens"] = job.kv_cache_tokens
        if job.host_kv_cache_tokens is None:
            sizes["host_kv_cache_tokens"] = 4 * job.kv_cache_tokens
    if job.host_kv_cache_tokens is not None:
        sizes["host_kv_cache_tokens"] = job.host_kv_cache_tokens
    extra = {"profile": job.profile} if job.profile else {}
    policy = "kvflow" if job.policy == LEARNED_POLICY else job.policy
    return EngineConfig(
        backend=job.backend,
        eviction_policy=policy,
        model=job.model,
        device=job.device,
        host_load_waits=job.host_load_waits,
        **sizes,
        **extra,
    )


def run_job(job: ReplayJob) -> tuple[dict, list[dict] | None]:
    """Replay `job` on a fresh engine: (result, timeline events or None)."""
    from agentrt.engine.llm_engine import LLMEngine

    trace = load_trace(job.trace, job.fmt, job.skip_bad, job.max_requests)
    records = trace.records
    config = engine_config(job)
    engine = LLMEngine.from_config(config)
    timeline = Timeline() if job.timeline else None
    wall = time.perf_counter()
    hints = LearnedReplayHints(job.graph) if job.policy == LEARNED_POLICY else None
    result = Replayer(engine, records, job.options, timeline=timeline, hints=hints).run()
    result["wall_s"] = time.perf_counter() - wall
    # every line read is accounted for: completed + failed + skipped == read
    result["read"] = trace.read
    result["skipped"] = len(trace.skipped)
    result["skipped_lines"] = [
        {"file": str(b.path), "line": b.line, "why": b.why} for b in trace.skipped
    ]
    result["config"] = {
        "backend": config.backend,
        "policy": job.policy,
        "profile": config.profile if config.backend == "sim" else None,
        "kv_cache_tokens": config.kv_capacity_tokens,
        "host_kv_cache_tokens": (config.num_host_pages or 0) * config.page_size,
        "host_load_waits": config.host_load_waits,
        "max_num_batched_tokens": config.max_num_batched_tokens,
        "max_num_seqs": config.max_num_seqs,
        "dispatch": job.options.dispatch,
        "speed": job.options.speed,
        "scale_tokens": job.options.scale_tokens,
        "requests": len(records),
    }
    return result, (timeline.events if timeline is not None else None)


def run_policies(
    base: ReplayJob, policies: list[str], jobs: int | None = None
) -> tuple[dict[str, dict], Timeline | None]:
    """Replay `base` once per policy (in up to `jobs` worker processes; 1 = in this one).
    Returns {policy: result} in the order given, and a merged timeline (one process per
    policy) when `base.timeline` is set."""
    if not policies or len(set(policies)) != len(policies):
        raise ValueError(f"policies must be distinct and non-empty, got {policies}")
    work = [
        replace(base, policy=p, options=replace(base.options, label=p, position=i))
        for i, p in enumerate(policies)
    ]
    jobs = jobs or min(len(work), os.cpu_count() or 1)
    if jobs <= 1 or len(work) == 1:
        outcomes = [run_job(job) for job in work]
    else:
        outcomes = _run_in_workers(work, jobs)
    timeline = Timeline() if base.timeline else None
    if timeline is not None:
        for pid, (policy, (_, events)) in enumerate(zip(policies, outcomes, strict=True), 1):
            timeline.merge(events or [], pid=pid, name=policy)
    return {p: result for p, (result, _) in zip(policies, outcomes, strict=True)}, timeline


def _run_in_workers(work: list[ReplayJob], jobs: int) -> list[tuple[dict, list[dict] | None]]:
    """`run_job` over `work` in `jobs` worker processes, results in order. Workers ignore
    Ctrl-C; when this process is interrupted (or a job fails) they are terminated."""
    before = set(multiprocessing.active_children())
    pool = ProcessPoolExecutor(max_workers=jobs, initializer=worker_signals)
    try:
        outcomes = list(pool.map(run_job, work))
    except BaseException:
        for worker in set(multiprocessing.active_children()) - before:
            worker.terminate()
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown()
    return outcomes
