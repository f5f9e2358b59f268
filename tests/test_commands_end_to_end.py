"""The commands no other test runs end to end run at small sizes and write their JSON:
`bench` tracker, sim (speed only), workflows (default model) and engine (a tiny random
model: its figures measure nothing, the test checks that every part runs); `calibrate`
(its profile then drives the sim backend) and `demo`, the main job."""

from __future__ import annotations

import orjson
import pytest
from tiny_models import make_tiny_model

from agentrt.cli import main


def _bench(tmp_path, *argv: str) -> dict:
    out = tmp_path / "bench.json"
    assert main(["bench", *argv, "--json", str(out)]) == 0
    return orjson.loads(out.read_bytes())


def test_bench_tracker(tmp_path):
    result = _bench(tmp_path, "tracker", "--calls", "2000", "--workflows", "20")
    assert result["tracker"]["num_calls"] == 2000 and result["tracker"]["releases_per_s"] > 0
    assert result["runtime"]["agent_calls"] > 0


def test_bench_sim_speed(tmp_path):
    speed = _bench(tmp_path, "sim", "--speed-only", "--calls", "2000")["speed"]
    assert speed["calls"] == 2000 and speed["simulated_s"] > 0 and speed["calls_per_wall_s"] > 0


def test_bench_workflows(tmp_path):
    argv = ["workflows", "--instances", "2", "--min-tokens", "4", "--max-tokens", "8"]
    result = _bench(tmp_path, *argv)
    assert result["identical_outputs"] and result["speedup"] > 0


@pytest.fixture(scope="module")
def tiny_long_model(tmp_path_factory):
    # the bench's prompts reach 2,000 tokens
    path = tmp_path_factory.mktemp("tiny_long") / "llama"
    return make_tiny_model("llama", path, max_position_embeddings=4096)


def test_bench_engine(tmp_path, tiny_long_model):
    result = _bench(tmp_path, "engine", "--model", str(tiny_long_model), "--repeats", "1")
    assert [c["ratio"] > 0 for c in result["cases"]] == [True, True]
    assert result["ttft_cached_ms"] > 0 and result["ttft_cold_ms"] > 0
    assert result["roofline"] and result["bandwidth"]


def test_calibrate_writes_a_profile_the_sim_backend_runs(tmp_path, tiny_long_model):
    from agentrt.engine.config import EngineConfig
    from agentrt.engine.llm_engine import LLMEngine
    from agentrt.engine.sampling_params import SamplingParams

    profile = tmp_path / "tiny.json"
    argv = ["calibrate", "--model", str(tiny_long_model), "--repeats", "1", "--out", str(profile)]
    assert main([*argv, "--name", "tiny", "--json", str(tmp_path / "fit.json")]) == 0
    fit = orjson.loads((tmp_path / "fit.json").read_bytes())
    assert fit["profile"]["name"] == "tiny" and len(fit["samples"]) > 20
    engine = LLMEngine.from_config(EngineConfig(backend="sim", profile=str(profile)))
    engine.add_request(list(range(1, 40)), SamplingParams(max_tokens=4, ignore_eos=True))
    while engine.has_unfinished_requests():
        engine.step()
    assert engine.clock.now() > 0


def test_demo_the_main_job(tmp_path):
    out = tmp_path / "demo.json"
    assert main(["demo", "--max-tokens", "8", "--json", str(out)]) == 0
    result = orjson.loads(out.read_bytes())
    assert result["workflows"] == 4 and result["failed"] == 0 and result["llm_calls"] == 16
    assert result["prefill_tokens_reused"] > 0  # the town's shared system prompt
