"""`agentrt bench serve`'s two runs on a tiny workload, and the server on the sim backend."""

from __future__ import annotations

import anyio
import openai
import orjson
import pytest
from engine_helpers import make_engine
from serve_helpers import ServerThread, make_tiny_chat_model

from agentrt.cli import main
from agentrt.engine.config import EngineConfig
from agentrt.serve.bench import build_workload, run_http, run_in_process
from agentrt.serve.engine_flags import build_engine


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return make_tiny_chat_model(tmp_path_factory.mktemp("bench") / "tinychat")


def test_http_and_in_process_runs_complete_the_same_workload(model_dir):
    requests = build_workload("workflow", 10, 49152, output_len=2)
    engine = make_engine(model_dir, kv_cache_tokens=8192)
    with ServerThread(engine) as server:
        http, http_hits = anyio.run(run_http, server.base_url, requests, 4)
    local, local_hits = anyio.run(
        run_in_process, make_engine(model_dir, kv_cache_tokens=8192), requests, 4
    )
    for result in (http, local):
        assert result["completed"] == 10 and result["failed"] == 0
        assert result["output_throughput"] > 0 and result["ttft_ms"]["p50"] > 0
    # 8 agents' 512-token prefixes: the last 2 requests reuse theirs
    assert http_hits > 0.1 and local_hits > 0.1


def test_sim_backend_serves_chat_in_virtual_time():
    engine = build_engine(EngineConfig(backend="sim", kv_cache_tokens=1 << 20))
    with ServerThread(engine) as server:
        client = openai.OpenAI(base_url=server.base_url + "/v1", api_key="x", max_retries=0)
        model = client.models.list().data[0].id
        for i in range(20):
            resp = client.chat.completions.create(
                model=model, messages=[{"role": "user", "content": f"q{i}"}], max_tokens=1
            )
            assert resp.usage.completion_tokens == 1
        metrics = server.get("/metrics").text
    assert 'agentrt:request_success_total{finished_reason="length"' in metrics
    assert "agentrt:time_to_first_token_seconds_count" in metrics


def test_bench_serve_cli_rejects_an_unknown_workload(capsys):
    assert main(["bench", "serve", "--backend", "sim", "--workload", "nope"]) == 2
    assert "unknown workload" in capsys.readouterr().err


def test_bench_serve_cli_prints_the_block_and_writes_json(tmp_path, capsys):
    engine = build_engine(EngineConfig(backend="sim"))
    out = tmp_path / "bench.json"
    with ServerThread(engine) as server:
        argv = ["bench", "serve", "--backend", "sim", "--base-url", server.base_url]
        argv += ["--num-requests", "6", "--clients", "2", "--output-len", "2"]
        assert main([*argv, "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    for line in (
        "Successful requests",
        "p99 TTFT (ms)",
        "Total token throughput",
        "Prefix hit rate",
        "p50 TTFT overhead",
    ):
        assert line in printed
    result = orjson.loads(out.read_bytes())
    assert result["results"]["HTTP"]["completed"] == 6
    assert result["results"]["HTTP"]["output_tokens"] == 12
    assert result["results"]["in-process"]["completed"] == 6
    assert "output_throughput_ratio" in result["overhead"]


def test_bench_serve_rounds_alternate_and_report_the_median(tmp_path, capsys):
    engine = build_engine(EngineConfig(backend="sim"))
    out = tmp_path / "bench.json"
    with ServerThread(engine) as server:
        argv = ["bench", "serve", "--backend", "sim", "--base-url", server.base_url]
        argv += ["--num-requests", "4", "--clients", "2", "--output-len", "2", "--rounds", "3"]
        assert main([*argv, "--json", str(out)]) == 0
    assert "Rounds (the overhead below is their median)" in capsys.readouterr().out
    result = orjson.loads(out.read_bytes())
    rounds = result["rounds"]
    assert len(rounds) == 3
    assert all(r["results"][mode]["completed"] == 4 for r in rounds for mode in r["results"])
    ratios = sorted(r["overhead"]["output_throughput_ratio"] for r in rounds)
    assert result["overhead"]["output_throughput_ratio"] == ratios[1]
    median = [r for r in rounds if r["overhead"]["output_throughput_ratio"] == ratios[1]][0]
    assert result["results"] == median["results"]


def test_mooncake_workload_keeps_shared_blocks_as_shared_prefixes(tmp_path):
    trace = tmp_path / "mooncake.jsonl"
    rows = [
        {"timestamp": 0, "input_length": 1024, "output_length": 40, "hash_ids": [7, 8]},
        {"timestamp": 5, "input_length": 1024, "output_length": 20, "hash_ids": [7, 9]},
    ]
    trace.write_text("\n".join(orjson.dumps(r).decode() for r in rows))
    a, b = build_workload("mooncake", 2, 49152, trace=trace, scale_tokens=0.25)
    assert len(a.prompt) == len(b.prompt) == 256 and (a.max_tokens, b.max_tokens) == (10, 5)
    assert a.prompt[:128] == b.prompt[:128] and a.prompt[128:] != b.prompt[128:]


def test_bench_serve_chat_endpoint_counts_what_the_server_renders(tmp_path, capsys):
    """`--endpoint chat`: the prompt goes as a user message; both runs complete, and the
    in-process run's prompt is the server's rendering (same prompt token totals)."""
    engine = build_engine(EngineConfig(backend="sim"))
    out = tmp_path / "chat.json"
    with ServerThread(engine) as server:
        argv = ["bench", "serve", "--backend", "sim", "--base-url", server.base_url]
        argv += ["--endpoint", "chat", "--num-requests", "6", "--clients", "3"]
        assert main([*argv, "--output-len", "1", "--json", str(out)]) == 0
    result = orjson.loads(out.read_bytes())
    assert result["endpoint"] == "chat"
    http, local = result["results"]["HTTP"], result["results"]["in-process"]
    assert http["completed"] == local["completed"] == 6
    assert http["output_tokens"] == local["output_tokens"] == 6
    assert http["input_tokens"] == local["input_tokens"] > 0
    assert http["ttft_ms"]["p50"] > 0


def test_short_workload_is_sixteen_token_prompts():
    requests = build_workload("short", 5, 49152, output_len=1)
    assert [(len(r.prompt), r.max_tokens) for r in requests] == [(16, 1)] * 5
    assert len({tuple(r.prompt) for r in requests}) == 5
