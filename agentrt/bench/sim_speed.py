"""How fast the sim backend simulates: LLM calls per wall second, on short calls at a
large batch (the shape of a 1,000-agent simulation step)."""

from __future__ import annotations

import random
import time

from agentrt.engine.config import EngineConfig
from agentrt.engine.llm_engine import LLMEngine
from agentrt.engine.sampling_params import SamplingParams


def sim_speed(num_calls: int = 20_000) -> dict:
    """Submit `num_calls` calls (48-token prompts sharing 32 tokens, 8 output tokens) at once
    and step the sim engine until all finish."""
    engine = LLMEngine.from_config(
        EngineConfig(
            backend="sim",
            profile="h100-llama3-8b",
            kv_cache_tokens=1 << 20,
            max_num_batched_tokens=8192,
            max_num_seqs=256,
        )
    )
    rng = random.Random(0)
    prefix = [rng.randrange(100, 30_000) for _ in range(32)]
    prompts = [prefix + [rng.randrange(100, 30_000) for _ in range(16)] for _ in range(num_calls)]
    params = SamplingParams(max_tokens=8, ignore_eos=True)
    start = time.perf_counter()
    for p in prompts:
        engine.add_request(p, params)
    finished = 0
    while engine.has_unfinished_requests():
        finished += sum(out.finished for out in engine.step())
    wall = time.perf_counter() - start
    assert finished == num_calls
    return {
        "calls": num_calls,
        "wall_s": wall,
        "calls_per_wall_s": num_calls / wall,
        "steps": engine.stats.steps,
        "simulated_s": engine.clock.now(),
        "mean_batch": engine.stats.as_dict()["mean_batch_size"],
    }
