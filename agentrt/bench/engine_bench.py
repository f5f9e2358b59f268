"""`agentrt bench engine`: our engine against HF transformers `generate`, same model,
dtype and machine, in one run.

Cases: batch-1 decode, a batch of 16 mixed prompt lengths, and TTFT with a cached vs.
cold 2,000-token prefix. Throughput is generated tokens / wall time, best of `repeats`.
Then the mean decode step at batch 1 and at batch 16 (256-token prompts), each against
its bandwidth bound (roofline.py) at the read bandwidth probed right before and after
those steps (bandwidth.py).
"""

from __future__ import annotations

import random
import time

import torch
from tqdm.auto import tqdm
from transformers import AutoModelForCausalLM

from agentrt.bench.bandwidth import (
    ReadProbe,
    l3_cache_bytes,
    measure_bandwidth,
    probe_bytes,
)
from agentrt.bench.roofline import decode_steps, decode_tokens_for, roofline
from agentrt.engine import loader
from agentrt.engine.config import EngineConfig
from agentrt.engine.llm_engine import LLMEngine
from agentrt.engine.outputs import RequestOutput
from agentrt.engine.sampling_params import SamplingParams
from agentrt.engine.torch_engine import resolve_dtype


def _prompts(lengths: list[int], vocab: int, seed: int) -> list[list[int]]:
    rng = random.Random(seed)
    return [[rng.randrange(100, vocab) for _ in range(n)] for n in lengths]


def _hf_generate_seconds(model, prompts: list[list[int]], new_tokens: int, pad_id: int) -> float:
    longest = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), longest), pad_id, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for row, p in enumerate(prompts):  # left padding, as HF batching expects
        ids[row, longest - len(p) :] = torch.tensor(p)
        mask[row, longest - len(p) :] = 1
    start = time.perf_counter()
    with torch.inference_mode():
        out = model.generate(ids, attention_mask=mask, max_new_tokens=new_tokens, do_sample=False)
    elapsed = time.perf_counter() - start
    assert out.shape[1] == longest + new_tokens
    return elapsed


def _ours(engine: LLMEngine, prompts: list[list[int]], new_tokens: int) -> list[RequestOutput]:
    params = SamplingParams(max_tokens=new_tokens, ignore_eos=True)
    ids = [engine.add_request(p, params) for p in prompts]
    done: dict[str, RequestOutput] = {}
    while engine.has_unfinished_requests():
        for out in engine.step():
            if out.finished:
                done[out.request_id] = out
    return [done[i] for i in ids]


def _ours_seconds(engine: LLMEngine, prompts: list[list[int]], new_tokens: int) -> float:
    engine.reset_prefix_cache()  # every throughput run starts cold, like HF
    start = time.perf_counter()
    outs = _ours(engine, prompts, new_tokens)
    elapsed = time.perf_counter() - start
    assert all(len(o.token_ids) == new_tokens for o in outs)
    return elapsed


def run_engine_bench(
    model: str | None = None,
    device: str = "cpu",
    dtype: str = "auto",
    repeats: int = 2,
    max_num_batched_tokens: int = 1024,
    progress: bool = True,
    batch_invariant: bool = False,
) -> dict:
    """The bench's results. Call it through `on_compute_thread`, so that both engines run
    on the compute thread (one OpenMP team: see compute_thread.py)."""
    engine = LLMEngine.from_config(
        EngineConfig(
            model=model,
            device=device,
            dtype=dtype,
            kv_cache_tokens=65_536,
            max_num_batched_tokens=max_num_batched_tokens,
            batch_invariant=batch_invariant,
        )
    )
    model_dir = loader.resolve_model_dir(model)
    torch_dtype = resolve_dtype(dtype)
    hf = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch_dtype).to(device).eval()
    hf.generation_config.eos_token_id = None  # run exactly new_tokens, like ignore_eos
    pad_id = hf.config.pad_token_id or 0
    hf.generation_config.pad_token_id = pad_id
    vocab = hf.config.vocab_size

    mixed = [32 + round(i * (1024 - 32) / 15) for i in range(16)]
    cases = [  # name, prompts, new tokens
        ("decode batch 1 (256 prompt, 64 new)", _prompts([256], vocab, 1), 64),
        ("batch 16 mixed (32-1024 prompt, 64 new)", _prompts(mixed, vocab, 2), 64),
    ]
    bar = tqdm(total=2 * len(cases) + 1, desc="bench engine", disable=not progress)
    warm = _prompts([64], vocab, 0)
    _ours(engine, warm, 4)
    _hf_generate_seconds(hf, warm, 4, pad_id)

    results = []
    for name, prompts, new_tokens in cases:
        tokens = len(prompts) * new_tokens
        hf_s = min(_hf_generate_seconds(hf, prompts, new_tokens, pad_id) for _ in range(repeats))
        bar.update(1)
        ours_s = min(_ours_seconds(engine, prompts, new_tokens) for _ in range(repeats))
        bar.update(1)
        results.append(
            {
                "name": name,
                "hf_tok_s": tokens / hf_s,
                "agentrt_tok_s": tokens / ours_s,
                "ratio": hf_s / ours_s,
            }
        )

    ttft_cold, ttft_cached = _ttft(engine, vocab, repeats)
    b16 = [256] * 16
    probe = probe_bytes(l3_cache_bytes())

    def steps_and_bandwidth(prompts: list[list[int]], new_tokens: int) -> tuple:
        """The decode steps, and the read bandwidth probed after each of them (this
        machine's bandwidth drifts by tens of percent within seconds to minutes)."""
        read = ReadProbe(probe, device)
        timed = decode_steps(engine, prompts, new_tokens, after_timed_step=read)
        return timed, read.gbs

    steps = [
        steps_and_bandwidth(_prompts([256], vocab, 5), 64),
        steps_and_bandwidth(
            _prompts(b16, vocab, 6), decode_tokens_for(sum(b16), max_num_batched_tokens)
        ),
    ]
    bar.update(1)
    bar.close()

    weight_bytes = sum(p.numel() * p.element_size() for p in engine.runner.model.parameters())
    kv_bytes_per_token = engine.runner.kv_bytes_per_token
    bandwidth = measure_bandwidth(device)
    return {
        "model": str(model_dir.name),
        "device": device,
        "dtype": str(torch_dtype).removeprefix("torch."),
        "batch_invariant": batch_invariant,
        "threads": torch.get_num_threads(),
        "cases": results,
        "ttft_cold_ms": ttft_cold * 1e3,
        "ttft_cached_ms": ttft_cached * 1e3,
        "ttft_cached_over_cold": ttft_cached / ttft_cold,
        "decode_step_ms": steps[0][0].mean_step_s * 1e3,
        "weight_bytes": weight_bytes,
        "kv_bytes_per_token": kv_bytes_per_token,
        "bandwidth": bandwidth,
        "roofline": [
            roofline(s, weight_bytes, kv_bytes_per_token, read_gbs) for s, read_gbs in steps
        ],
    }


def _ttft(engine: LLMEngine, vocab: int, repeats: int) -> tuple[float, float]:
    """TTFT of a 2,000-token shared prefix + 32-token suffix, cold vs. prefix cached."""
    prefix = _prompts([2000], vocab, 3)[0]
    suffixes = _prompts([32] * (2 * repeats + 1), vocab, 4)

    def first_token(suffix: list[int]) -> float:
        out = _ours(engine, [prefix + suffix], 1)[0]
        assert out.first_token_time is not None
        return out.first_token_time - out.arrival_time

    cold, cached = [], []
    for i in range(repeats):
        engine.reset_prefix_cache()
        cold.append(first_token(suffixes[2 * i]))
        cached.append(first_token(suffixes[2 * i + 1]))
    return min(cold), min(cached)
