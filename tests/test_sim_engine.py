"""The sim backend: the shared batcher and KV manager on a virtual clock."""

from __future__ import annotations

import pytest
from engine_helpers import make_engine, random_prompts, run_to_completion

from agentrt.bench.sim_validation import default_workloads, run_workload, validate
from agentrt.engine.batcher import ScheduledBatch, ScheduledSeq
from agentrt.engine.config import EngineConfig
from agentrt.engine.cost_model import CostModel, CostModelRunner, load_profile
from agentrt.engine.cost_model.recording import RecordingRunner
from agentrt.engine.llm_engine import LLMEngine
from agentrt.engine.sampling_params import SamplingParams
from agentrt.engine.sequence import Sequence


def sim_engine(profile: str = "h100-llama3-8b", **overrides) -> LLMEngine:
    settings = {"page_size": 4, "kv_cache_tokens": 4096}
    settings.update(overrides)
    return LLMEngine.from_config(EngineConfig(backend="sim", profile=profile, **settings))


def test_sim_engine_runs_token_prompts_without_weights_or_tokenizer():
    engine = sim_engine()
    assert isinstance(engine.runner, CostModelRunner)
    prompts = random_prompts(5, 3, 40, 1000, seed=1)
    outs = run_to_completion(engine, prompts, SamplingParams(max_tokens=7))
    assert engine.tokenizer is None
    assert [len(o.token_ids) for o in outs] == [7] * 5
    assert all(o.finish_reason == "length" for o in outs)
    # Every request's timestamps are virtual seconds taken from the engine's clock.
    assert engine.clock.now() == pytest.approx(engine.runner.busy_seconds)
    assert engine.clock.now() > 0
    for o in outs:
        assert 0.0 == o.arrival_time < o.first_token_time <= o.finish_time <= engine.clock.now()


def test_sim_tokens_are_deterministic_and_never_eos():
    runs = []
    for _ in range(2):  # tokens depend on the request id and position only
        engine = sim_engine()
        engine.add_request([5, 6, 7, 8, 9], SamplingParams(max_tokens=50), request_id="same")
        outs = [o for _ in range(60) for o in engine.step() if o.finished]
        runs.append(outs[0].token_ids)
    assert runs[0] == runs[1] and len(set(runs[0])) > 1
    assert not set(runs[0]) & {0, 1, 2, 128001, 128009}


def test_appended_tokens_are_the_sampled_ones():
    runner = sim_engine().runner
    tokens = runner.tokens
    seqs = [Sequence([5, 6, 7], SamplingParams(), request_id=r) for r in ("a", "b")]
    for seq in seqs:
        tokens.append(seq, 1)
        tokens.append(seq, 3)
        want = [tokens.token(seq.request_id, p) for p in range(3, 7)]
        assert seq.token_ids == [5, 6, 7, *want]
        seq.num_computed_tokens = len(seq.token_ids) - 1
    sampled = runner.execute(ScheduledBatch([ScheduledSeq(s, 1) for s in seqs]))
    assert sampled == [tokens.token(s.request_id, 7) for s in seqs]


def test_clock_advances_by_the_modelled_step_cost():
    engine = sim_engine()
    engine.runner = RecordingRunner(engine.runner)
    run_to_completion(engine, [[3] * 30, [4] * 9], SamplingParams(max_tokens=3))
    model = CostModel(load_profile("h100-llama3-8b"))
    expected = sum(model.step_seconds(s.features) for s in engine.runner.steps)
    assert engine.clock.now() == pytest.approx(expected)


def test_recording_runner_passes_the_declared_kv_capabilities_through():
    """`ModelRunner` declares `kv_bytes_per_token` and `kv_transfer` with defaults; the
    recording wrapper must report its inner runner's, not the defaults."""
    engine = sim_engine(host_kv_cache_tokens=1024, eviction_policy="hicache")
    inner = engine.runner
    assert inner.kv_bytes_per_token > 0 and inner.kv_transfer is not None
    recorder = RecordingRunner(inner)
    assert recorder.kv_bytes_per_token == inner.kv_bytes_per_token
    assert recorder.kv_transfer is inner.kv_transfer
    assert engine.kv.page_bytes == inner.kv_bytes_per_token * 4  # passed on by LLMEngine
    assert engine.kv.host is not None and engine.kv.host.transfer is inner.kv_transfer


def test_transfers_queue_on_one_link():
    runner = CostModelRunner(load_profile("l4-llama3-8b"))
    one = runner.transfer_seconds(1 << 30)
    assert one == pytest.approx(1e-5 + (1 << 30) / 25e9)
    first, second = runner.start_transfer(1 << 30), runner.start_transfer(1 << 30)
    assert (first, second) == pytest.approx((one, 2 * one))
    assert runner.clock.now() == 0.0  # starting a copy does not block the engine
    runner.wait_until(second)
    assert runner.clock.now() == second


def _scheduler_trace(engine: LLMEngine, prompts, params):
    engine.runner = RecordingRunner(engine.runner)
    ids = [engine.add_request(p, params, request_id=f"r{i}") for i, p in enumerate(prompts)]
    while engine.has_unfinished_requests():
        engine.step()
        engine.check_integrity()
    assert ids
    steps = [s.items for s in engine.runner.steps]
    return steps, engine.stats.preemptions, engine.stats.prefill_tokens_reused


def test_sim_makes_the_same_scheduling_decisions_as_the_torch_engine(tiny_models):
    # A small pool and a shared prefix: preemptions, evictions and prefix hits all happen.
    shared = list(range(10, 42))
    prompts = [shared + p for p in random_prompts(10, 4, 30, 256, seed=3)]
    prompts += random_prompts(4, 20, 60, 256, seed=4)
    params = SamplingParams(max_tokens=12, ignore_eos=True)
    limits = {"kv_cache_tokens": 256, "max_num_batched_tokens": 48, "max_num_seqs": 8}
    real = _scheduler_trace(make_engine(tiny_models["llama"], **limits), prompts, params)
    sim = _scheduler_trace(sim_engine(**limits), prompts, params)
    assert real[1] > 0 and real[2] > 0, "the workload must preempt and reuse prefixes"
    assert [len(s) for s in sim[0]] == [len(s) for s in real[0]]
    assert sim == real


def test_validation_workloads_schedule_identically(tiny_models):
    result = validate(
        "cpu-smollm2-135m",
        str(tiny_models["qwen2"]),
        default_workloads(scale=0.1, vocab=256),
        dtype="float32",
        page_size=4,
        kv_cache_tokens=4096,
        max_num_batched_tokens=64,
    )
    assert len(result["workloads"]) == 2
    for row in result["workloads"]:
        assert row["same_schedule"] and row["steps"] > 4 and row["sim_s"] > 0
    assert result["workloads"][1]["prefix_tokens_reused"] > 0


def test_a_thousand_requests_simulate_with_consistent_bookkeeping():
    engine = sim_engine(
        page_size=16, kv_cache_tokens=1 << 16, max_num_seqs=256, max_num_batched_tokens=4096
    )
    engine.runner = RecordingRunner(engine.runner)
    prefix = list(range(100, 164))
    prompts = [prefix + [1000 + i, 2000 + i] for i in range(1000)]
    outs = run_to_completion(engine, prompts, SamplingParams(max_tokens=4))
    assert len(outs) == 1000 and all(len(o.token_ids) == 4 for o in outs)
    assert max(len(s.items) for s in engine.runner.steps) == 256
    assert engine.stats.prefill_tokens_reused >= 999 * 64


def test_run_workload_requires_a_recording_runner():
    engine = sim_engine()
    with pytest.raises(AssertionError, match="RecordingRunner"):
        run_workload(engine, default_workloads(scale=0.05)[0])
