"""Sampling: seeds reproduce, filters behave, streaming deltas add up."""

from __future__ import annotations

import torch
from engine_helpers import make_engine, random_prompts, run_to_completion

from agentrt.engine.sampler import Sampler
from agentrt.engine.sampling_params import SamplingParams


def test_seeded_sampling_does_not_depend_on_batch(tiny_models):
    params = SamplingParams(temperature=1.0, top_p=0.9, seed=42, max_tokens=12, ignore_eos=True)
    prompt = [5, 6, 7, 8, 9]
    alone = run_to_completion(make_engine(tiny_models["qwen2"]), [prompt], params)[0]
    others = random_prompts(5, 3, 30, 256, seed=9)
    engine = make_engine(tiny_models["qwen2"])
    greedy = SamplingParams(max_tokens=12, ignore_eos=True)
    batched = run_to_completion(engine, [*others, prompt], [greedy] * 5 + [params])[-1]
    assert alone.token_ids == batched.token_ids


def test_different_seeds_differ(tiny_models):
    engine = make_engine(tiny_models["llama"])
    outs = run_to_completion(
        engine,
        [[5, 6, 7]] * 4,
        [SamplingParams(temperature=1.5, seed=s, max_tokens=16, ignore_eos=True) for s in range(4)],
    )
    assert len({tuple(o.token_ids) for o in outs}) > 1


def test_top_k_one_is_greedy(tiny_models):
    engine = make_engine(tiny_models["mistral"])
    prompt = [11, 12, 13]
    greedy = run_to_completion(engine, [prompt], SamplingParams(max_tokens=8, ignore_eos=True))
    top1 = run_to_completion(
        engine, [prompt], SamplingParams(temperature=0.7, top_k=1, max_tokens=8, ignore_eos=True)
    )
    assert greedy[0].token_ids == top1[0].token_ids


def test_top_p_keeps_only_the_nucleus():
    logits = torch.tensor([[3.0, 2.9, -5.0, -5.0]])
    sampler = Sampler(seed=0)
    params = SamplingParams(temperature=1.0, top_p=0.5)
    picks = {sampler.sample(logits, [params], ["r"])[0] for _ in range(50)}
    assert picks <= {0, 1} and picks


def test_stop_token_ids_and_eos(tiny_models):
    engine = make_engine(tiny_models["llama"])
    free = run_to_completion(engine, [[5, 6, 7]], SamplingParams(max_tokens=10, ignore_eos=True))[0]
    stop_at = free.token_ids[3]
    stopped = run_to_completion(
        engine,
        [[5, 6, 7]],
        SamplingParams(max_tokens=10, stop_token_ids=[stop_at], ignore_eos=True),
    )[0]
    first = free.token_ids.index(stop_at)
    assert stopped.token_ids == free.token_ids[: first + 1]
    assert stopped.finish_reason == "stop"


def test_streaming_deltas_add_up(tiny_models):
    engine = make_engine(tiny_models["qwen3"])
    rid = engine.add_request([5, 6, 7, 8], SamplingParams(max_tokens=9, ignore_eos=True))
    streamed: list[int] = []
    final = None
    while engine.has_unfinished_requests():
        for out in engine.step():
            assert out.request_id == rid
            streamed += out.new_token_ids
            final = out
    assert final is not None and final.finished
    assert streamed == final.token_ids and len(streamed) == 9
