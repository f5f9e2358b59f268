"""A trace recorded from a real run of an example replays on the built-in engine and
reproduces its token counts and prefix hits call by call (default model, CPU)."""

from __future__ import annotations

from pathlib import Path

import orjson

from agentrt.cli import main
from agentrt.trace import TraceReader
from agentrt.trace.replay_run import ReplayJob, run_job

ROOT = Path(__file__).resolve().parent.parent


def test_recorded_example_replays_with_same_tokens_and_prefix_hits(tmp_path):
    trace = tmp_path / "t.jsonl"
    assert main(["run", str(ROOT / "examples" / "many_instances.py"), "--trace", str(trace)]) == 0
    recorded = {r.call_id: r for r in TraceReader(trace)}
    assert len(recorded) == 16  # 8 instances x (triage -> answer)
    assert any(r.parents for r in recorded.values())
    assert sum(r.cached_tokens for r in recorded.values()) > 0

    job = ReplayJob(trace=str(trace), backend="builtin", policy="lru")
    job.options.dispatch = "dependency"
    job.options.per_call = True
    job.options.progress = False
    result, _ = run_job(job)
    calls = result["calls"]
    assert result["completed"] == 16 and result["failed"] == 0
    assert set(calls) == set(recorded)
    for call_id, record in recorded.items():
        call = calls[call_id]
        assert call["prompt_tokens"] == record.prompt_len, call_id
        assert call["output_tokens"] == record.output_len, call_id
        assert call["cached_tokens"] == record.cached_tokens, call_id
    first = orjson.loads(trace.read_bytes().splitlines()[0])
    assert first["version"] == 1 and "prompt_token_ids" in first
