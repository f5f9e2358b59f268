"""The `agentrt bench` commands that no other test runs end to end run at small sizes and
write their JSON: tracker, sim (speed only), workflows (default model) and engine (a tiny
random model; its figures measure nothing, the test checks that every part runs)."""

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
