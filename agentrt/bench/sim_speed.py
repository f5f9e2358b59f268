"""How fast the sim backend simulates: LLM calls per wall second.

Short calls (a few dozen prompt tokens sharing a system prefix, a few output tokens) at
a large batch, the shape of a 1,000-agent simulation step, on the H100 profile.
"""

from __future__ import annotations

import random
import time

from agentrt.engine.config import EngineConfig
from agentrt.engine.llm_engine import LLMEngine
from agentrt.engine.sampling_params import SamplingParams


def sim_speed(
    num_calls: int = 20_000,
    prompt_tokens: int = 48,
    shared_prefix: int = 32,
    max_tokens: int = 8,
    max_num_seqs: int = 256,
    profile: str = "h100-llama3-8b",
) -> dict:
    """Submit `num_calls` calls at once and step the sim engine until all finish."""
    engine = LLMEngine.from_config(
        EngineConfig(
            backend="sim",
            profile=profile,
            kv_cache_tokens=1 << 20,
            max_num_batched_tokens=8192,
            max_num_seqs=max_num_seqs,
        )
    )
    rng = random.Random(0)
    prefix = [rng.randrange(100, 30_000) for _ in range(shared_prefix)]
    prompts = [
        prefix + [rng.randrange(100, 30_000) for _ in range(prompt_tokens - shared_prefix)]
        for _ in range(num_calls)
    ]
    params = SamplingParams(max_tokens=max_tokens, ignore_eos=True)
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
