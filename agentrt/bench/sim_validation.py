"""`agentrt bench sim`: does the sim backend predict the built-in engine?

The same workloads on the real engine (wall clock) and the sim backend (virtual clock):
end-to-end time of each and the error. Both share the batcher and KV manager, so they
must schedule identically; `same_schedule` checks it step by step.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from agentrt.engine.config import EngineConfig
from agentrt.engine.cost_model.recording import RecordingRunner, StepRecord
from agentrt.engine.llm_engine import LLMEngine
from agentrt.engine.sampling_params import SamplingParams


@dataclass
class Workload:
    """Prompts run at once (`sequential=False`) or each after the previous finished."""

    name: str
    prompts: list[list[int]]
    max_tokens: int
    sequential: bool = False


@dataclass
class RunResult:
    seconds: float  # by the engine's clock: wall for builtin, virtual for sim
    steps: list[StepRecord]
    step_seconds: list[float]  # each engine.step() that ran a batch, same clock
    prefix_tokens_reused: int
    preemptions: int


def _tokens(n: int, rng: random.Random, vocab: int = 30_000) -> list[int]:
    return [rng.randrange(3, min(vocab, 30_000)) for _ in range(n)]


def default_workloads(scale: float = 1.0, seed: int = 0, vocab: int = 30_000) -> list[Workload]:
    """The engine bench's mixed batch of 16, and a sequential shared-prefix chain."""
    rng = random.Random(seed)
    tokens = lambda n: _tokens(n, rng, vocab)
    top = max(64, int(1024 * scale))
    mixed = [32 + round(i * (top - 32) / 15) for i in range(16)]
    prefix = tokens(max(32, int(1024 * scale)))
    return [
        Workload(
            "batch 16 mixed (32-1024 prompt, 64 new)",
            [tokens(n) for n in mixed],
            max(4, int(64 * scale)),
        ),
        Workload(
            "sequential: 8 calls, shared 1024 prefix + 32, 16 new",
            [prefix + tokens(32) for _ in range(8)],
            max(4, int(16 * scale)),
            sequential=True,
        ),
    ]


def run_workload(engine: LLMEngine, workload: Workload) -> RunResult:
    """Run `workload` from a cold prefix cache; the engine's runner must be recording."""
    recorder = engine.runner
    assert isinstance(recorder, RecordingRunner), "wrap the runner in RecordingRunner"
    engine.reset_prefix_cache()
    first_step = len(recorder.steps)
    reused, preempted = engine.stats.prefill_tokens_reused, engine.stats.preemptions
    params = SamplingParams(max_tokens=workload.max_tokens, ignore_eos=True)
    start = engine.clock.now()
    batches = [[p] for p in workload.prompts] if workload.sequential else [workload.prompts]
    n = 0
    step_seconds: list[float] = []
    for prompts in batches:
        for p in prompts:
            engine.add_request(p, params, request_id=f"{workload.name}/{n}")
            n += 1
        while engine.has_unfinished_requests():
            before, t0 = len(recorder.steps), engine.clock.now()
            engine.step()
            if len(recorder.steps) > before:
                step_seconds.append(engine.clock.now() - t0)
    return RunResult(
        engine.clock.now() - start,
        recorder.steps[first_step:],
        step_seconds,
        engine.stats.prefill_tokens_reused - reused,
        engine.stats.preemptions - preempted,
    )


def validate(
    profile: str,
    model: str | None = None,
    workloads: list[Workload] | None = None,
    repeats: int = 3,
    **config,
) -> dict:
    """Real vs simulated end-to-end time per workload, and whether schedules match.

    The real time is taken over `repeats` runs as the best total and as the sum of each
    step's best time (the schedule is deterministic); `error` uses the latter."""
    sizes = {"kv_cache_tokens": 65_536, "max_num_batched_tokens": 1024, "max_num_seqs": 64}
    settings = {"model": model, **sizes, **config}
    real = LLMEngine.from_config(EngineConfig(**settings))
    sim = LLMEngine.from_config(EngineConfig(backend="sim", profile=profile, **settings))
    real.runner = RecordingRunner(real.runner)
    sim.runner = RecordingRunner(sim.runner)
    vocab = real.vocab_size or 30_000
    run_workload(real, Workload("warm-up", [_tokens(64, random.Random(1), vocab)], 4))
    rows = []
    for w in workloads or default_workloads(vocab=vocab):
        runs = [run_workload(real, w) for _ in range(repeats)]
        r = min(runs, key=lambda x: x.seconds)
        step_best = sum(min(t) for t in zip(*(x.step_seconds for x in runs), strict=True))
        s = run_workload(sim, w)
        rows.append(
            {
                "workload": w.name,
                "real_best_total_s": r.seconds,
                "real_s": step_best,
                "sim_s": s.seconds,
                "error": (s.seconds - step_best) / step_best,
                "error_vs_best_total": (s.seconds - r.seconds) / r.seconds,
                "steps": len(r.steps),
                "same_schedule": [x.items for x in r.steps] == [x.items for x in s.steps],
                "prefix_tokens_reused": r.prefix_tokens_reused,
            }
        )
    return {
        "profile": profile,
        "workloads": rows,
        "max_abs_error": max(abs(row["error"]) for row in rows),
    }
