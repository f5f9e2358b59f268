"""Helpers for engine tests: build engines on tiny models and HF reference outputs."""

from __future__ import annotations

import random
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM

from agentrt.engine.config import EngineConfig
from agentrt.engine.llm_engine import LLMEngine
from agentrt.engine.outputs import RequestOutput
from agentrt.engine.sampling_params import SamplingParams


def make_engine(model_dir: Path | str | None, **overrides) -> LLMEngine:
    settings = {"dtype": "float32", "page_size": 4, "kv_cache_tokens": 4096}
    settings.update(overrides)
    return LLMEngine.from_config(
        EngineConfig(model=str(model_dir) if model_dir else None, **settings)
    )


def run_to_completion(
    engine: LLMEngine, prompts: list[list[int]], params: list[SamplingParams] | SamplingParams
) -> list[RequestOutput]:
    """Submit all prompts at once, step until done, checking page accounting every step."""
    if isinstance(params, SamplingParams):
        params = [params] * len(prompts)
    ids = [engine.add_request(p, sp) for p, sp in zip(prompts, params, strict=True)]
    done: dict[str, RequestOutput] = {}
    while engine.has_unfinished_requests():
        for out in engine.step():
            if out.finished:
                done[out.request_id] = out
        engine.check_integrity()
    return [done[i] for i in ids]


def hf_greedy(model, prompt: list[int], max_new_tokens: int) -> list[int]:
    """HF transformers `generate`, greedy, exactly `max_new_tokens` tokens (EOS ignored)."""
    ids = torch.tensor([prompt])
    out = model.generate(
        ids,
        attention_mask=torch.ones_like(ids),
        max_new_tokens=max_new_tokens,
        do_sample=False,
    )
    return out[0, len(prompt) :].tolist()


def load_hf(model_dir: Path | str):
    """HF model in fp32 whose `generate` never stops early (EOS cleared, like ignore_eos)."""
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    model.generation_config.eos_token_id = None
    model.generation_config.pad_token_id = 0
    return model


def random_prompts(n: int, low: int, high: int, vocab: int, seed: int) -> list[list[int]]:
    rng = random.Random(seed)
    return [[rng.randrange(3, vocab) for _ in range(rng.randint(low, high))] for _ in range(n)]


class ByteTokenizer:
    """Bytes as token ids (offset past the specials) for tiny models without a tokenizer."""

    chat_template = None

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        return [3 + b % 250 for b in text.encode()]

    def decode(self, ids: list[int], skip_special_tokens: bool = True) -> str:
        return "".join(chr(97 + i % 26) for i in ids)
