"""Implicit decodes (`LLMEngine.implicit_decodes`, `DecodeGroup`) against the plain
step, step by step: the same outputs in the same order, clock, statistics, free pages,
block tables and prefix tree, under evictions, preemptions, aborts, shared prefixes,
length limits of the model and requests that arrive mid-run."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sim_helpers import sim_engine_state

from agentrt.engine.config import EngineConfig
from agentrt.engine.cost_model.decode_group import DecodeGroup
from agentrt.engine.cost_model.synthetic_tokens import RequestTokens, SyntheticTokens
from agentrt.engine.llm_engine import LLMEngine
from agentrt.engine.outputs import RequestOutput
from agentrt.engine.sampling_params import SamplingParams
from agentrt.engine.sequence import Sequence


def sim_engine(implicit: bool, kv_tokens: int, host_tokens: int) -> LLMEngine:
    engine = LLMEngine.from_config(
        EngineConfig(
            backend="sim",
            profile="l4-llama3-8b",
            page_size=4,
            kv_cache_tokens=kv_tokens,
            host_kv_cache_tokens=host_tokens,
            eviction_policy="kvflow" if host_tokens else "lru",
            max_num_seqs=12,
            max_num_batched_tokens=64,
        )
    )
    engine.stream_outputs = False
    engine.implicit_decodes = implicit
    return engine


def output_key(out: RequestOutput) -> tuple:
    return (
        out.request_id,
        out.token_ids,
        out.finish_reason,
        out.num_cached_tokens,
        out.first_token_time,
        out.finish_time,
    )


def lockstep(seed: int, kv_tokens: int, host_tokens: int, fast: bool) -> dict[str, int]:
    """Drive a plain engine and one with implicit decodes through the same random
    workload, checking that every step gives the same outputs and every engine state is
    the same. ``fast``: the implicit engine sometimes takes a `fast_forward` stretch,
    which the plain engine matches step by step (outputs only at its last step).
    Returns counts of what happened (steps, stretches, preemptions)."""
    rng = random.Random(seed)
    plain = sim_engine(False, kv_tokens, host_tokens)
    group = sim_engine(True, kv_tokens, host_tokens)
    prefixes = [[rng.randrange(100, 5000) for _ in range(rng.randrange(4, 30))] for _ in range(3)]
    submitted = steps = stretches = 0
    for _ in range(400):
        if submitted < 40 and rng.random() < 0.3:
            for _ in range(rng.randrange(1, 4)):
                prefix = rng.choice(prefixes)
                tail = [rng.randrange(100, 5000) for _ in range(rng.randrange(1, 20))]
                params = SamplingParams(max_tokens=rng.randrange(1, 40), ignore_eos=True)
                for engine in (plain, group):
                    engine.add_request(
                        prefix + tail,
                        params,
                        request_id=f"r{submitted}",
                        agent_id=f"a{submitted % 5}",
                        prefix_len=len(prefix),
                    )
                submitted += 1
        if plain.requests and rng.random() < 0.03:
            victim = rng.choice(sorted(plain.requests))
            plain.abort(victim)
            group.abort(victim)
        n = 0
        if fast and rng.random() < 0.5:
            finished: list[RequestOutput] = []
            until = group.clock.now() + rng.random()
            n = group.fast_forward(until, finished)
        if n:
            stretches += n > 1
            for _ in range(n - 1):
                assert plain.step() == []
            assert [output_key(o) for o in plain.step()] == [output_key(o) for o in finished]
        else:
            n = 1
            outs = plain.step()
            assert [output_key(o) for o in group.step()] == [output_key(o) for o in outs]
        steps += n
        for engine in (plain, group):
            engine.check_integrity()
        g = group.runner.decode_group
        assert min([*g._pages, *g._finishes], default=g.steps) >= g.steps  # none left behind
        assert sim_engine_state(group) == sim_engine_state(plain)
        if not plain.has_unfinished_requests() and submitted >= 40:
            break
    group.implicit_decodes = False  # tokens catch up
    assert [running(s) for s in group.batcher.running] == [
        running(s) for s in plain.batcher.running
    ]
    return {"steps": steps, "stretches": stretches, "preemptions": plain.stats.preemptions}


def running(seq: Sequence) -> tuple:
    return (seq.request_id, list(seq.token_ids), seq.num_computed_tokens, list(seq.block_table))


LIMITS = [(4096, 0), (160, 0), (96, 0), (160, 400)]  # roomy, evictions, preemptions, host tier


@pytest.mark.parametrize(("kv_tokens", "host_tokens"), LIMITS)
@pytest.mark.parametrize("seed", range(4))
def test_implicit_decodes_step_like_the_plain_engine(seed, kv_tokens, host_tokens):
    lockstep(seed, kv_tokens, host_tokens, fast=False)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), limits=st.sampled_from(LIMITS))
def test_fast_forward_of_the_group_is_the_plain_steps(seed, limits):
    lockstep(seed, *limits, fast=True)


def test_the_workloads_exercise_what_they_claim():
    assert lockstep(1, 96, 0, fast=False)["preemptions"] > 0
    assert lockstep(1, 4096, 0, fast=True)["stretches"] > 0


def test_group_events_and_context():
    tokens = RequestTokens(SyntheticTokens(100, 1000))
    group = DecodeGroup(page_size=4, max_model_len=100, tokens=tokens)
    seq = Sequence([1, 2, 3, 4, 5], SamplingParams(max_tokens=6), request_id="a")
    seq.token_ids.append(9)  # one output token; 5 tokens computed, 3 slots in 2 pages
    seq.num_computed_tokens = 5
    seq.block_table = [0, 1]
    group.join(seq)
    assert group.context() == 6
    needs, finishes = [], []
    for step in range(5):
        needs.append(bool(group.pages_due()))
        finishes.append(bool(group.finishing()))
        if needs[-1]:
            seq.block_table.append(2 + step)
        group.paged(group.pages_due())
        assert group.context() == 6 + step
        group.advance(float(step))
    # tokens 5, 6, 7 fill page 1; token 8 needs page 2 (step 3); 5 more outputs end at step 4
    assert needs == [False, False, False, True, False]
    assert finishes == [False, False, False, False, True]
    group.leave(seq)
    assert seq.num_computed_tokens == 10
    assert seq.token_ids == [1, 2, 3, 4, 5, 9, *(tokens.token("a", p) for p in range(6, 11))]
    assert len(group) == 0 and group.context() == 0
