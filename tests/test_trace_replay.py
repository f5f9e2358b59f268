"""Trace replay on the sim backend: both dispatch modes, failures, KV stats per admission."""

from __future__ import annotations

import pytest

from agentrt.engine.config import EngineConfig
from agentrt.engine.llm_engine import LLMEngine
from agentrt.trace import CallRecord
from agentrt.trace.replay import Replayer
from agentrt.trace.replay_options import ReplayOptions


def _sim(kv_cache_tokens: int = 65_536, **overrides) -> LLMEngine:
    return LLMEngine.from_config(
        EngineConfig(backend="sim", kv_cache_tokens=kv_cache_tokens, **overrides)
    )


def _call(call_id: str, arrival: float, parents=(), think=0.0, prompt=64, output=4, **kw):
    return CallRecord(
        call_id=call_id,
        workflow_id="w",
        agent_id=kw.pop("agent", "a"),
        step=len(parents),
        parents=list(parents),
        think_time_s=think,
        arrival_s=arrival,
        prompt_len=prompt,
        output_len=output,
        **kw,
    )


def _run(records, engine=None, **options) -> dict:
    options.setdefault("progress", False)
    return Replayer(engine or _sim(), records, ReplayOptions(per_call=True, **options)).run()


def test_timestamp_dispatch_honours_arrivals_and_speed():
    records = [_call("a", 0.0), _call("b", 10.0), _call("c", 30.0, parents=["a"], think=99.0)]
    calls = _run(records, dispatch="timestamp", speed=2.0)["calls"]
    # An idle sim engine jumps to the next arrival; parents/think time are ignored.
    assert [calls[c]["arrival_s"] for c in "abc"] == pytest.approx([0.0, 5.0, 15.0])
    assert all(calls[c]["finish_s"] > calls[c]["arrival_s"] for c in "abc")


def test_dependency_dispatch_waits_for_parents_plus_think_time():
    records = [
        _call("a", 0.0, output=20),
        _call("b", 0.0, output=5),
        # recorded arrival 1.0 is ignored: c waits for both parents, then 3 s of think time
        _call("c", 1.0, parents=["a", "b"], think=3.0),
        _call("d", 1.0, parents=["c"], think=0.5),
    ]
    calls = _run(records, dispatch="dependency", speed=1.0)["calls"]
    last_parent = max(calls["a"]["finish_s"], calls["b"]["finish_s"])
    assert calls["a"]["finish_s"] > calls["b"]["finish_s"]  # the slower parent decides
    assert calls["c"]["arrival_s"] == pytest.approx(last_parent + 3.0)
    assert calls["d"]["arrival_s"] == pytest.approx(calls["c"]["finish_s"] + 0.5)
    faster = _run(records, dispatch="dependency", speed=2.0)["calls"]
    assert faster["d"]["arrival_s"] == pytest.approx(faster["c"]["finish_s"] + 0.25)


def test_dependency_on_calls_outside_the_trace_is_ignored():
    calls = _run([_call("x", 2.0, parents=["gone"], think=50.0)], dispatch="dependency")
    assert calls["calls"]["x"]["arrival_s"] == pytest.approx(0.0)  # first arrival = start
    assert calls["completed"] == 1


def test_prompt_longer_than_kv_pool_is_a_failed_request():
    records = [_call("ok", 0.0, prompt=100), _call("huge", 0.1, prompt=5000)]
    result = _run(records, engine=_sim(kv_cache_tokens=1024))
    assert result["completed"] == 1 and result["failed"] == 1
    assert result["calls"]["huge"]["failed"] and not result["calls"]["ok"]["failed"]


def test_children_of_a_failed_call_still_run():
    records = [_call("huge", 0.0, prompt=5000), _call("child", 0.0, parents=["huge"], think=1.0)]
    result = _run(records, engine=_sim(kv_cache_tokens=1024), dispatch="dependency")
    assert result["completed"] == 1 and result["failed"] == 1


def test_shared_hash_blocks_hit_the_prefix_cache():
    block = 64
    records = [
        _call("a", 0.0, prompt=3 * block, hash_ids=[1, 2, 3], block_size=block),
        _call("b", 10.0, prompt=3 * block, hash_ids=[1, 2, 4], block_size=block),
    ]
    result = _run(records, engine=_sim(page_size=16))
    assert result["calls"]["a"]["cached_tokens"] == 0
    assert result["calls"]["b"]["cached_tokens"] == 2 * block
    assert result["kv"]["requests"] == 2
    assert result["device_hit_rate"] == pytest.approx(2 * block / (6 * block))


def test_kv_stats_count_a_deferred_request_once():
    # b shares a's long prefix and arrives with it: the batcher defers b while a computes
    # the prefix (several steps); b must still count as one request with its real hit.
    records = [
        _call("a", 0.0, prompt=4096, hash_ids=list(range(8)), block_size=512),
        _call("b", 0.0, prompt=4096, hash_ids=[*range(7), 99], block_size=512),
    ]
    engine = _sim(max_num_batched_tokens=1500)  # a's last chunk leaves room for b
    result = _run(records, engine=engine)
    kv = result["kv"]
    assert kv["requests"] == 2 and kv["prompt_tokens"] == 8192
    assert result["calls"]["b"]["cached_tokens"] == 7 * 512
    assert kv["device_hit_tokens"] == 7 * 512
    assert kv["recomputed_tokens"] == 8192 - 7 * 512


def test_scale_tokens_shrinks_prompts_and_outputs():
    records = [_call("a", 0.0, prompt=1000, output=100, hash_ids=[1, 2], block_size=512)]
    result = _run(records, scale_tokens=0.1)
    call = result["calls"]["a"]
    assert call["prompt_tokens"] == 100 and call["output_tokens"] == 10
