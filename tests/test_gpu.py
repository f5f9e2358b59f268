"""The same engine code on CUDA (run with `make test-gpu` on a machine with a GPU)."""

from __future__ import annotations

import pytest
import torch
from engine_helpers import hf_greedy, make_engine, random_prompts, run_to_completion

from agentrt.engine.sampling_params import SamplingParams

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


@pytest.mark.parametrize("family", ["llama", "qwen2", "qwen3"])
def test_greedy_matches_hf_on_cuda(family, tiny_models):
    from transformers import AutoModelForCausalLM

    hf = AutoModelForCausalLM.from_pretrained(tiny_models[family], dtype=torch.float32).eval()
    hf.generation_config.eos_token_id = None
    engine = make_engine(tiny_models[family], device="cuda", max_num_batched_tokens=16)
    prompts = random_prompts(6, 3, 40, 256, seed=21)
    outs = run_to_completion(engine, prompts, SamplingParams(max_tokens=10, ignore_eos=True))
    for prompt, out in zip(prompts, outs, strict=True):
        assert out.token_ids == hf_greedy(hf, prompt, 10)


def test_default_model_bf16_on_cuda():
    engine = make_engine(None, device="cuda", dtype="bfloat16", page_size=16)
    prompt = engine.tokenizer.apply_chat_template(
        [{"role": "user", "content": "What is the capital of France?"}],
        add_generation_prompt=True,
        tokenize=True,
        return_dict=False,
    )
    (out,) = run_to_completion(engine, [list(prompt)], SamplingParams(max_tokens=20))
    assert "Paris" in out.text
