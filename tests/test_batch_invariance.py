"""Batch-invariant mode (`EngineConfig.batch_invariant`): a sequence's bits do not depend on
what it is batched with, so bf16 greedy runs that batch differently agree exactly.

The kernel-level tests check the property each piece relies on; the engine and town tests
check the whole (without the mode, the engine test's staggered prompts and the town's
25-agent run each produce different bf16 tokens, found while building it).
"""

from __future__ import annotations

import random

import pytest
import torch

from agentrt.engine.config import EngineConfig
from agentrt.engine.llm_engine import LLMEngine
from agentrt.engine.model import build_attention_metadata
from agentrt.engine.model.attention import paged_attention
from agentrt.engine.model.linear import MAX_INVARIANT_K, Linear
from agentrt.engine.sampling_params import SamplingParams
from agentrt.simulation import TownScenario, TownWorld
from agentrt.simulation.runner import BuiltinConfig, run_simulation

KV_HEADS, HEADS, DIM, PAGE = 3, 9, 64, 16


def _attend(caches, seqs: list[tuple[list[int], int, torch.Tensor]]) -> list[torch.Tensor]:
    """One step over ``seqs`` (pages, cached tokens, new queries [n, H, D]); returns each
    one's output rows. The step writes back the cache's own values: caches stay as they are."""
    k_cache, v_cache = caches
    order = sorted(range(len(seqs)), key=lambda i: len(seqs[i][2]) != 1)  # decodes first
    meta = build_attention_metadata(
        [seqs[i][0] for i in order],
        [seqs[i][1] for i in order],
        [len(seqs[i][2]) for i in order],
        PAGE,
        torch.device("cpu"),
        batch_invariant=True,
    )
    q = torch.cat([seqs[i][2] for i in order])
    k = k_cache[:, meta.slot_mapping].transpose(0, 1).contiguous()
    v = v_cache[:, meta.slot_mapping].transpose(0, 1).contiguous()
    out = paged_attention(q, k, v, k_cache, v_cache, meta, DIM**-0.5)
    rows, start = [None] * len(seqs), 0
    for i in order:
        rows[i] = out[start : start + len(seqs[i][2])]
        start += len(seqs[i][2])
    return rows


def test_attention_rows_do_not_depend_on_chunking_or_the_batch():
    """A sequence's rows are the same computed as one prefill, in random chunks, as
    single-token steps, and beside other sequences of any length."""
    gen = torch.Generator().manual_seed(0)
    rng = random.Random(0)
    caches = tuple(torch.randn(KV_HEADS, 400 * PAGE, DIM, generator=gen).bfloat16() for _ in "kv")
    for _ in range(25):
        total = rng.randint(2, 700)
        pages = list(range(-(-total // PAGE)))
        queries = torch.randn(total, HEADS, DIM, generator=gen).bfloat16()
        whole = _attend(caches, [(pages, 0, queries)])[0]
        pieces, done = [], 0
        while done < total:
            n = 1 if rng.random() < 0.3 else rng.randint(1, total - done)
            others = []
            for _ in range(rng.randint(0, 4)):  # unrelated sequences in the same step
                length = rng.randint(1, 900)
                new = 1 if rng.random() < 0.5 else rng.randint(1, length)
                own = list(range(50 + 60 * len(others), 50 + 60 * len(others) + 57))
                q = torch.randn(new, HEADS, DIM, generator=gen).bfloat16()
                others.append((own, length - new, q))
            pieces.append(_attend(caches, [(pages, done, queries[done : done + n])] + others)[0])
            done += n
        assert torch.equal(torch.cat(pieces), whole), total


def test_split_reduction_rows_do_not_depend_on_the_row_count():
    torch.manual_seed(0)
    layer = Linear(MAX_INVARIANT_K + 512, 576, bias=False).to(torch.bfloat16)
    assert layer.split_reduction() and len(layer.slices) == 2
    x = torch.randn(96, layer.in_features).bfloat16()
    with torch.inference_mode():
        single = torch.cat([layer(x[r : r + 1]) for r in range(len(x))])
        for rows in (2, 5, 8, 15, 33, 96):
            assert torch.equal(layer(x[:rows]), single[:rows]), rows
        # the split sum stays close to the one-piece matmul
        whole = torch.nn.functional.linear(x, layer.weight)
        assert torch.allclose(layer(x).float(), whole.float(), rtol=0.02, atol=0.05)


@pytest.fixture(scope="module")
def invariant_engine():
    return LLMEngine.from_config(EngineConfig(dtype="bfloat16", batch_invariant=True))


def _run(engine: LLMEngine, schedule: list[tuple[int, list[int]]]) -> dict[int, list[int]]:
    """Add each prompt at its engine step; greedy tokens per schedule index."""
    engine.reset_prefix_cache()
    params = SamplingParams(max_tokens=12, ignore_eos=True)
    pending = sorted(range(len(schedule)), key=lambda i: schedule[i][0])
    ids: dict[str, int] = {}
    tokens: dict[int, list[int]] = {}
    step = 0
    while pending or engine.has_unfinished_requests():
        while pending and schedule[pending[0]][0] <= step:
            i = pending.pop(0)
            ids[engine.add_request(schedule[i][1], params)] = i
        for out in engine.step():
            if out.finished:
                tokens[ids[out.request_id]] = list(out.token_ids)
        step += 1
    return tokens


def test_default_model_bf16_tokens_do_not_depend_on_the_batch(invariant_engine):
    rng = random.Random(2)  # without the mode, one of these prompts changes tokens
    words = [
        "the",
        "town",
        "agent",
        "walks",
        "to",
        "the",
        "cafe",
        "and",
        "talks",
        "with",
        "a",
        "friend",
        "about",
        "plans",
    ]
    tok = invariant_engine.tokenizer
    prompts = [
        tok.encode(" ".join(rng.choice(words) for _ in range(rng.randint(20, 600))))
        for _ in range(6)
    ]
    alone = [_run(invariant_engine, [(0, p)])[0] for p in prompts]
    staggered = [(rng.randint(0, 8), p) for p in prompts]  # chunked, mixed, decode batches
    together = _run(invariant_engine, staggered)
    assert [together[i] for i in range(len(prompts))] == alone


def test_bf16_sync_and_ooo_write_the_same_town(invariant_engine):
    """25 agents from 07:00 for 30 steps (45 calls) on the default model in bf16."""
    res = run_simulation(
        lambda: TownWorld(TownScenario(agents=25)),
        30,
        ["sync", "ooo"],
        backend="builtin",
        builtin=BuiltinConfig(invariant_engine.config, max_tokens=8),
    )
    assert res["sync"].calls == res["ooo"].calls >= 40
    assert res["sync"].world_hash == res["ooo"].world_hash
    assert res["ooo"].extra["batch_invariant"] and res["ooo"].extra["dtype"] == "bfloat16"
