"""The fused decode stack (cpu_kernels/decode_stack.cpp) gives the same bits as the
layer-by-layer loop it replaces, for every family, batch size and context length."""

from __future__ import annotations

import pytest
import torch
from engine_helpers import make_engine
from tiny_models import FAMILIES, make_tiny_model

from agentrt.engine.model.cpu_build import CpuKernels
from agentrt.engine.model.decode_stack import DecodeStack
from agentrt.engine.sampling_params import SamplingParams


def _stack_engine(model_dir):
    engine = make_engine(model_dir, dtype="bfloat16")
    model = engine.runner.model
    if not isinstance(model.kernels, CpuKernels) or model.decode_stack is None:
        pytest.skip("no decode stack here (no C++ build or no AVX-512 BF16)")
    return engine


def _logits_of_each_step(engine, prompts, use_stack: bool, monkeypatch) -> tuple[list, int]:
    """Greedy generation of `prompts` together; every forward's logits, and how many
    forwards the stack ran."""
    model = engine.runner.model
    stack, forward = model.decode_stack, model.forward
    logits, ran = [], []
    original = DecodeStack.__call__

    def counted(self, *args):
        ran.append(1)
        return original(self, *args)

    def recorded(*args):
        logits.append(forward(*args).clone())
        return logits[-1]

    monkeypatch.setattr(DecodeStack, "__call__", counted)
    monkeypatch.setattr(model, "forward", recorded)
    model.decode_stack = stack if use_stack else None
    engine.reset_prefix_cache()
    params = SamplingParams(max_tokens=12, ignore_eos=True)
    for prompt in prompts:
        engine.add_request(prompt, params)
    while engine.has_unfinished_requests():
        engine.step()
    monkeypatch.undo()
    model.decode_stack = stack
    return logits, len(ran)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("batch", [1, 2, 3, 4])
def test_stack_matches_the_layer_loop(family, batch, tmp_path, monkeypatch) -> None:
    # head_dim 64 and 9 query heads over 3 KV heads: the register attention kernel, and
    # query groups that two threads split between them
    model_dir = make_tiny_model(
        family,
        tmp_path / family,
        hidden_size=576,
        num_attention_heads=9,
        num_key_value_heads=3,
        **({"head_dim": 64} if family == "qwen3" else {}),
    )
    engine = _stack_engine(model_dir)
    prompts = [[(7 * i + 3 * j) % 250 + 1 for j in range(5 + 6 * i)] for i in range(batch)]
    with_stack, ran = _logits_of_each_step(engine, prompts, True, monkeypatch)
    without, not_ran = _logits_of_each_step(engine, prompts, False, monkeypatch)
    assert ran >= 8 and not_ran == 0
    assert len(with_stack) == len(without)
    for a, b in zip(with_stack, without, strict=True):
        assert torch.equal(a, b)


def test_small_head_dims_and_pages(tiny_models, monkeypatch) -> None:
    """The generic attention path (head dim 16) and 4-token pages crossed mid-decode."""
    engine = _stack_engine(tiny_models["llama"])
    prompts = [[5, 9, 2], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]]
    with_stack, ran = _logits_of_each_step(engine, prompts, True, monkeypatch)
    without, _ = _logits_of_each_step(engine, prompts, False, monkeypatch)
    assert ran > 0
    assert all(torch.equal(a, b) for a, b in zip(with_stack, without, strict=True))


def test_stack_refuses_bad_steps(tiny_models) -> None:
    engine = _stack_engine(tiny_models["llama"])
    stack = engine.runner.model.decode_stack
    native = stack._native
    h = torch.zeros(5, 64, dtype=torch.bfloat16)
    one = torch.zeros(5, dtype=torch.long)
    tables = torch.zeros(5, 1, dtype=torch.long)
    rope = engine.runner.model.rope
    with pytest.raises(RuntimeError, match="1 to 4 tokens"):
        native.run(h, one, tables, one + 1, one, 4, 0.25, rope.cos, rope.sin)
    caches = engine.runner.kv_caches
    native.set_caches([k for k, _ in caches], [v for _, v in caches])
    h, one, tables = h[:1].contiguous(), one[:1], tables[:1]
    with pytest.raises(RuntimeError, match="outside the cache"):
        native.run(h, one, tables, one + 1, one - 1, 4, 0.25, rope.cos, rope.sin)
    with pytest.raises(RuntimeError, match="does not fit the block table"):
        native.run(h, one, tables, one + 9, one, 4, 0.25, rope.cos, rope.sin)


def test_chunked_prefill_in_bf16(tiny_models) -> None:
    """A prefill chunk that samples nothing asks the lm head for zero rows: the matvec
    path must leave that to the plain linear (it once failed the request)."""
    engine = make_engine(tiny_models["qwen2"], dtype="bfloat16", max_num_batched_tokens=16)
    engine.add_request(list(range(1, 41)), SamplingParams(max_tokens=3, ignore_eos=True))
    outs = []
    while engine.has_unfinished_requests():
        outs += [o for o in engine.step() if o.finished]
    assert outs[0].error is None and len(outs[0].token_ids) == 3
