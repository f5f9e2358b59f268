"""The embedded default model (SmolLM2-135M-Instruct) through our engine."""

from __future__ import annotations

import pytest
from engine_helpers import hf_greedy, load_hf, make_engine, run_to_completion

from agentrt.engine import loader
from agentrt.engine.sampling_params import SamplingParams

QUESTIONS = [
    "What is the capital of France?",
    "Write a haiku about the sea.",
    "List three prime numbers.",
]


@pytest.fixture(scope="module")
def default_dir():
    return loader.resolve_model_dir(None)


@pytest.fixture(scope="module")
def engine(default_dir):
    return make_engine(default_dir, page_size=16, kv_cache_tokens=8192)


def _chat(engine, question: str) -> list[int]:
    messages = [{"role": "user", "content": question}]
    return list(
        engine.tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, tokenize=True, return_dict=False
        )
    )


def test_greedy_matches_hf_on_default_model(engine, default_dir):
    hf = load_hf(default_dir)
    prompts = [_chat(engine, q) for q in QUESTIONS]
    outs = run_to_completion(engine, prompts, SamplingParams(max_tokens=16, ignore_eos=True))
    for prompt, out in zip(prompts, outs, strict=True):
        assert out.token_ids == hf_greedy(hf, prompt, 16)


def test_answers_and_stops(engine):
    out = run_to_completion(engine, [_chat(engine, QUESTIONS[0])], SamplingParams(max_tokens=30))[0]
    assert "Paris" in out.text
    assert out.finish_reason == "stop"  # EOS (<|im_end|>) ends it before max_tokens


def test_stop_string_cuts_text(engine):
    prompt = _chat(engine, "Count from 1 to 10, separated by commas.")
    out = run_to_completion(engine, [prompt], SamplingParams(max_tokens=40, stop=["5"]))[0]
    assert out.finish_reason == "stop"
    assert "5" not in out.text and "4" in out.text
