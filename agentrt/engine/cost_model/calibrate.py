"""`agentrt calibrate`: measure the built-in engine on this machine and fit a profile.

Every sample is one real `LLMEngine.step()`, timed by wall clock, its features recorded
by a `RecordingRunner`, over prefill chunks and decode steps of several sizes and
contexts. Each workload runs `repeats` times from a cold cache (the schedule is
deterministic); the per-step minimum filters out other processes.
"""

from __future__ import annotations

import os
import random
import time
from dataclasses import dataclass
from pathlib import Path

from agentrt.engine.config import EngineConfig
from agentrt.engine.cost_model.fit import StepFit, fit_step_costs
from agentrt.engine.cost_model.model import StepFeatures
from agentrt.engine.cost_model.profile import CostProfile, DecodeCost, PrefillCost
from agentrt.engine.cost_model.recording import RecordingRunner
from agentrt.engine.llm_engine import LLMEngine
from agentrt.engine.sampling_params import SamplingParams

CALIBRATION_CONFIG = {"kv_cache_tokens": 65_536, "max_num_batched_tokens": 1024, "max_num_seqs": 64}

# (context, batch sizes) of the decode workloads; each primes a shared prefix, so its
# first step is a short chunk over a long cached context (<= ~9k decode context in all).
DECODE_GRID = ((128, (1, 8, 32, 64)), (512, (4, 16)), (1024, (1, 8)))


@dataclass
class Sample:
    label: str
    features: StepFeatures
    seconds: float


def _tokens(n: int, rng: random.Random, vocab: int) -> list[int]:
    """`n` random token ids of a `vocab`-token model (ids 100-29,999 where it has them)."""
    return [rng.randrange(min(100, vocab // 2), min(30_000, vocab)) for _ in range(n)]


def timed_steps(engine: LLMEngine, prompts: list[list[int]], max_tokens: int) -> list[Sample]:
    """Run `prompts` to completion; one sample per executed step (label left empty)."""
    recorder = engine.runner
    assert isinstance(recorder, RecordingRunner)
    params = SamplingParams(max_tokens=max_tokens, ignore_eos=True)
    for p in prompts:
        engine.add_request(p, params)
    samples = []
    while engine.has_unfinished_requests():
        before = len(recorder.steps)
        t0 = time.perf_counter()
        engine.step()
        elapsed = time.perf_counter() - t0
        if len(recorder.steps) > before:
            samples.append(Sample("", recorder.steps[-1].features, elapsed))
    return samples


def _workloads(seed: int, vocab: int) -> list[tuple[str, list[list[int]], list[list[int]], int]]:
    """(label, priming prompts, measured prompts, max_tokens) per workload."""
    rng = random.Random(seed)
    out = [(f"prefill {n}", [], [_tokens(n, rng, vocab)], 1) for n in (16, 64, 256, 1024)]
    out.append(("prefill 3072 (3 chunks)", [], [_tokens(3072, rng, vocab)], 1))
    # Steps that mix prefill chunks of several sequences with decodes.
    mixed = [_tokens(48 + 84 * i, rng, vocab) for i in range(8)]
    out.append(("mixed 8 (48-636 prompt, 16 new)", [], mixed, 16))
    for context, batches in DECODE_GRID:
        prefix = _tokens(context - 16, rng, vocab)
        for batch in batches:
            prompts = [prefix + _tokens(16, rng, vocab) for _ in range(batch)]
            out.append((f"B={batch} ctx~{context}", [prefix + [7] * 16], prompts, 8))
    return out


def measure(engine: LLMEngine, repeats: int = 2, seed: int = 0) -> list[Sample]:
    """Samples of every calibration workload (min over `repeats` runs per step)."""
    samples: list[Sample] = []
    for label, priming, prompts, max_tokens in _workloads(seed, engine.vocab_size):
        best: list[Sample] | None = None
        for _ in range(repeats):
            engine.reset_prefix_cache()
            timed_steps(engine, priming, 1)
            run = timed_steps(engine, prompts, max_tokens)
            best = (
                run
                if best is None
                else [min(a, b, key=lambda s: s.seconds) for a, b in zip(best, run, strict=True)]
            )
        assert best is not None
        for s in best:
            kind = "decode" if s.features.prefill_tokens == 0 else "prefill/mixed"
            samples.append(Sample(f"{label}: {kind}", s.features, s.seconds))
    return samples


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or "unknown CPU"


def calibrate(
    model: str | None = None, device: str = "cpu", repeats: int = 2, name: str = "calibrated"
) -> tuple[CostProfile, StepFit, list[Sample]]:
    """Measure the built-in engine and fit a profile of it."""
    import torch

    from agentrt.bench.bandwidth import copy_bytes_per_s

    engine = LLMEngine.from_config(EngineConfig(model=model, device=device, **CALIBRATION_CONFIG))
    engine.runner = RecordingRunner(engine.runner)
    timed_steps(engine, [_tokens(64, random.Random(99), engine.vocab_size)], 4)  # warm-up
    samples = measure(engine, repeats)
    fit = fit_step_costs([s.features for s in samples], [s.seconds for s in samples])

    torch_model = engine.runner.model
    weight_bytes = sum(p.numel() * p.element_size() for p in torch_model.parameters())
    copy_bytes_s = copy_bytes_per_s(device=device)  # bytes a copy moves per second
    constant = fit.coef["constant_s"]
    weights_read = min(constant, weight_bytes / copy_bytes_s)
    threads = torch.get_num_threads()
    profile = CostProfile(
        name=name,
        model=Path(str(model)).name if model else "SmolLM2-135M-Instruct",
        hardware=f"{cpu_name()}, {threads} torch threads",
        dtype=str(next(torch_model.parameters()).dtype).removeprefix("torch."),
        step_overhead_s=constant - weights_read,
        prefill=PrefillCost(
            per_token_s=fit.coef["prefill_per_token_s"], per_pair_s=fit.coef["prefill_per_pair_s"]
        ),
        decode=DecodeCost(
            weights_read_s=weights_read,
            per_seq_s=fit.coef["decode_per_seq_s"],
            per_context_token_s=fit.coef["decode_per_context_token_s"],
        ),
        overlap_weights_and_compute=False,
        host_device_bytes_per_s=copy_bytes_s,
        kv_bytes_per_token=engine.runner.kv_bytes_per_token,
        vocab_size=engine.vocab_size,
        sources=[
            f"agentrt calibrate: {len(samples)} timed engine steps on this machine "
            f"({time.strftime('%Y-%m-%d')}), non-negative least squares, relative error",
            "weights_read_s = weight bytes / measured copy bandwidth (capped at the fitted "
            "per-step constant; the rest of that constant is step_overhead_s)",
            "host_device_bytes_per_s: measured memcpy bandwidth (host and 'device' are "
            "both RAM on CPU)",
        ],
        fit={
            "samples": len(samples),
            "mean_abs_relative_error": fit.mean_abs_relative_error,
            "max_abs_relative_error": fit.max_abs_relative_error,
            "engine_config": CALIBRATION_CONFIG,
            "load_average_1min": os.getloadavg()[0],  # > torch threads: others competed
        },
    )
    return profile, fit, samples


def summary_rows(samples: list[Sample], fit: StepFit) -> list[tuple]:
    """Per label: steps, measured ms, fitted ms, error %."""
    groups: dict[str, list[int]] = {}
    for i, s in enumerate(samples):
        groups.setdefault(s.label, []).append(i)
    rows = []
    for label, idx in groups.items():
        measured = sum(samples[i].seconds for i in idx)
        fitted = sum(fit.predicted_s[i] for i in idx)
        rows.append(
            (
                label,
                len(idx),
                measured * 1e3,
                fitted * 1e3,
                f"{100 * (fitted - measured) / measured:+.1f}%",
            )
        )
    return rows
