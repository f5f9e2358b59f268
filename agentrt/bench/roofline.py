"""A decode step against its bandwidth bound: the step must read the weights and the KV
of every sequence in the batch at least once, so weight bytes + KV bytes read, over the
sustained read bandwidth, is the fastest it can be."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from agentrt.engine.llm_engine import LLMEngine
from agentrt.engine.sampling_params import SamplingParams


@dataclass(frozen=True)
class DecodeSteps:
    """Pure decode steps of one batch: every sequence running, none prefilling."""

    batch: int
    steps: int
    mean_step_s: float
    mean_context_tokens: float  # KV tokens the batch reads per step, summed over sequences


def decode_steps(
    engine: LLMEngine,
    prompts: list[list[int]],
    new_tokens: int,
    after_timed_step: Callable[[], None] | None = None,
) -> DecodeSteps:
    """Run `prompts` together (prefix cache reset first) for `new_tokens` each and time
    every engine step in which each of them produced a token that was not its first, so
    the mean is a step of exactly len(prompts) decoding sequences; `after_timed_step`
    runs after each of those, outside its timing (a bandwidth probe). Raises ValueError
    when no such step happened (the prefill outlasted the first sequence's decode)."""
    engine.reset_prefix_cache()
    params = SamplingParams(max_tokens=new_tokens, ignore_eos=True)
    ids = {engine.add_request(p, params) for p in prompts}
    times: list[float] = []
    contexts: list[int] = []
    while engine.has_unfinished_requests():
        start = time.perf_counter()
        outs = engine.step()
        elapsed = time.perf_counter() - start
        decoded = [o for o in outs if o.request_id in ids and len(o.new_token_ids) == 1]
        if len(decoded) == len(ids) and all(len(o.token_ids) > 1 for o in decoded):
            times.append(elapsed)
            # this step computed each sequence's previous token against all before it
            contexts.append(sum(len(o.prompt_token_ids) + len(o.token_ids) - 1 for o in decoded))
            if after_timed_step is not None:
                after_timed_step()
    if not times:
        raise ValueError(f"no step decoded all {len(prompts)} sequences at once")
    return DecodeSteps(
        len(prompts), len(times), sum(times) / len(times), sum(contexts) / len(contexts)
    )


def decode_tokens_for(
    batch_prompt_tokens: int, max_num_batched_tokens: int, tokens: int = 64
) -> int:
    """New tokens per sequence so that about `tokens` steps of the whole batch decoding
    remain after a chunked prefill of `batch_prompt_tokens` (decodes share the budget, so
    the prefill takes up to about twice its token count over the budget)."""
    return tokens + 2 * math.ceil(batch_prompt_tokens / max_num_batched_tokens)


def roofline(
    steps: DecodeSteps, weight_bytes: int, kv_bytes_per_token: int, read_gbs: float
) -> dict:
    """The bound of a mean step (weights + the KV it reads, over `read_gbs`) and the
    fraction of it the measured step reaches (1.0: at the bound)."""
    kv_bytes = kv_bytes_per_token * steps.mean_context_tokens
    bound_s = (weight_bytes + kv_bytes) / (read_gbs * 1e9)
    return {
        "batch": steps.batch,
        "steps": steps.steps,
        "step_ms": steps.mean_step_s * 1e3,
        "read_gbs": read_gbs,
        "kv_bytes_read": kv_bytes,
        "bound_ms": bound_s * 1e3,
        "fraction": bound_s / steps.mean_step_s,
    }
