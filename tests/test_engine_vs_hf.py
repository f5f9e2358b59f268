"""Greedy outputs of our engine equal HF transformers' `generate`, token for token (fp32)."""

from __future__ import annotations

import pytest
from engine_helpers import hf_greedy, load_hf, make_engine, random_prompts, run_to_completion
from tiny_models import FAMILIES

from agentrt.engine.model.kernels import PLAIN
from agentrt.engine.sampling_params import SamplingParams

NEW_TOKENS = 10


@pytest.fixture(scope="module")
def hf_models(tiny_models):
    return {family: load_hf(path) for family, path in tiny_models.items()}


def _check(engine, hf, prompts, max_tokens=NEW_TOKENS):
    outs = run_to_completion(
        engine, prompts, SamplingParams(max_tokens=max_tokens, ignore_eos=True)
    )
    for prompt, out in zip(prompts, outs, strict=True):
        assert out.token_ids == hf_greedy(hf, prompt, max_tokens), f"prompt of {len(prompt)}"
    return outs


@pytest.mark.parametrize("family", FAMILIES)
def test_batch_of_one(family, tiny_models, hf_models):
    engine = make_engine(tiny_models[family])
    for prompt in random_prompts(3, 1, 40, 256, seed=1):
        _check(engine, hf_models[family], [prompt])


@pytest.mark.parametrize("family", FAMILIES)
def test_mixed_length_batch(family, tiny_models, hf_models):
    engine = make_engine(tiny_models[family])
    _check(engine, hf_models[family], random_prompts(8, 1, 60, 256, seed=2))
    assert engine.stats.steps < 8 * NEW_TOKENS  # the requests really shared steps


@pytest.mark.parametrize("family", FAMILIES)
def test_prefix_cache_hits(family, tiny_models, hf_models):
    engine = make_engine(tiny_models[family])
    shared = random_prompts(1, 37, 37, 256, seed=3)[0]
    suffixes = random_prompts(4, 1, 9, 256, seed=4)
    first = _check(engine, hf_models[family], [shared + suffixes[0]])
    assert first[0].num_cached_tokens == 0
    # Later requests, one at a time and then as a batch, reuse the cached prefix.
    outs = _check(engine, hf_models[family], [shared + suffixes[1]])
    outs += _check(engine, hf_models[family], [shared + s for s in suffixes[2:]])
    assert all(out.num_cached_tokens >= 36 for out in outs)
    assert engine.stats.prefill_tokens_reused > 0


@pytest.mark.parametrize("family", FAMILIES)
def test_chunked_prefill(family, tiny_models, hf_models):
    engine = make_engine(tiny_models[family], max_num_batched_tokens=7)
    prompts = random_prompts(5, 10, 50, 256, seed=5)
    _check(engine, hf_models[family], prompts)
    assert max(len(p) for p in prompts) > 7


@pytest.mark.parametrize("family", ["llama", "qwen3"])
def test_preemption_under_page_pressure(family, tiny_models, hf_models):
    # 24 pages of 4 tokens: the batch cannot fit at once, so sequences are preempted
    # and recomputed; outputs must not change.
    engine = make_engine(tiny_models[family], kv_cache_tokens=96, max_num_batched_tokens=16)
    prompts = random_prompts(10, 5, 40, 256, seed=6)
    _check(engine, hf_models[family], prompts, max_tokens=16)
    assert engine.stats.preemptions > 0


def test_in_flight_prefix_is_computed_once(tiny_models, hf_models):
    # Several requests with one long shared prefix arrive together: the batcher defers
    # the followers until the leader's prefix is cached instead of computing it N times.
    engine = make_engine(tiny_models["llama"], max_num_batched_tokens=64)
    shared = random_prompts(1, 40, 40, 256, seed=7)[0]
    prompts = [shared + s for s in random_prompts(4, 2, 6, 256, seed=8)]
    outs = _check(engine, hf_models["llama"], prompts)
    assert sum(out.num_cached_tokens for out in outs) >= 3 * 40 - 3 * 4


@pytest.mark.parametrize("family", FAMILIES)
def test_batch_invariant_mode(family, tiny_models, hf_models):
    # The fixed-block attention path: mixed batch, chunked prefill and prefix hits.
    engine = make_engine(tiny_models[family], batch_invariant=True, max_num_batched_tokens=7)
    shared = random_prompts(1, 21, 21, 256, seed=9)[0]
    _check(engine, hf_models[family], [shared + [5]])
    prompts = [shared + s for s in random_prompts(3, 1, 9, 256, seed=10)]
    outs = _check(engine, hf_models[family], prompts + random_prompts(3, 1, 30, 256, seed=11))
    assert any(out.num_cached_tokens >= 20 for out in outs)


@pytest.mark.parametrize("family", FAMILIES)
def test_plain_kernels_the_path_cuda_runs(family, tiny_models, hf_models, monkeypatch):
    # The plain torch ops of `kernels.py` are what CUDA runs; here on CPU, through the
    # whole engine: mixed batch, chunked prefill, prefix hits and preemption.
    monkeypatch.setenv("AGENTRT_PLAIN_KERNELS", "1")
    engine = make_engine(tiny_models[family], kv_cache_tokens=128, max_num_batched_tokens=16)
    assert engine.runner.model.kernels is PLAIN and engine.runner.model.decode_stack is None
    shared = random_prompts(1, 21, 21, 256, seed=12)[0]
    prompts = [shared + s for s in random_prompts(4, 1, 9, 256, seed=13)]
    outs = _check(engine, hf_models[family], prompts + random_prompts(6, 5, 40, 256, seed=14))
    assert any(out.num_cached_tokens >= 20 for out in outs)
    assert engine.stats.preemptions > 0
