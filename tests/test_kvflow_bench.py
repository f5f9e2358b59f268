"""`agentrt bench kvflow` end to end on small sizes: every key, every policy, same outputs."""

from __future__ import annotations

import orjson
import pytest

from agentrt.bench.kvflow_bench import POLICIES, pool_sizes, run_kvflow_bench
from agentrt.bench.kvflow_workloads import concurrent, single
from agentrt.cli import main

POLICY_KEYS = {
    "e2e_s",
    "device_hit_rate",
    "host_hit_rate",
    "recomputed_tokens",
    "loaded_bytes",
    "prefetch_late",
}
TOP_KEYS = {
    "scenario",
    "backend",
    "profile",
    "sizes",
    "policies",
    "kvflow_over_lru",
    "kvflow_over_hicache",
    "kvflow_vs_ideal",
    "kvflow_minus_belady_hit_rate_pp",
    "identical_outputs",
}


def test_workflow_loops_and_future_matches_calls():
    w = single(prefix=32, dynamic=4, output=2, rounds=3, agents=4)
    graph = w.workflow().graph
    assert graph.agents == ["a1", "a2", "a3", "a4"]
    assert w.future_calls() == w.agent_ids() * 3
    c = concurrent(prefix=32, dynamic=4, output=2, rounds=1, instances=3)
    assert c.future_calls()[:3] == ["kvflow-concurrent/a1"] * 3
    assert c.dynamic_ids(0, 1, 0) != c.dynamic_ids(1, 1, 0)


def test_device_pool_holds_the_named_prefixes_plus_running_requests():
    w = single(prefix=64, dynamic=8, output=8, rounds=2, agents=10)
    sizes = pool_sizes(w, device_prefixes=3, page_size=16)
    assert sizes["num_pages"] == 3 * 4 + (1 + 2)
    assert sizes["num_host_pages"] >= 10 * 4


def test_sim_single_runs_every_policy_and_kvflow_hits_on_device():
    w = single(prefix=256, dynamic=16, output=4, rounds=2, agents=6)
    result = run_kvflow_bench(w, "sim", "h100-llama3-8b")
    assert result.keys() >= TOP_KEYS
    assert list(result["policies"]) == list(POLICIES)
    for row in result["policies"].values():
        assert row.keys() >= POLICY_KEYS
        assert row["e2e_s"] > 0
    p = result["policies"]
    assert result["identical_outputs"] is True
    assert p["lru"]["recomputed_tokens"] > p["kvflow"]["recomputed_tokens"]
    assert p["lru"]["loaded_bytes"] == 0 and p["hicache"]["loaded_bytes"] > 0
    # a 6-agent cycle over a 3-prefix pool: LRU always evicts the next agent, STE does not
    assert p["kvflow"]["device_hit_rate"] > p["hicache"]["device_hit_rate"]
    assert result["kvflow_over_lru"] > 1


def test_sim_kvflow_prefetch_stays_off_the_critical_path():
    """On the sim backend the runtime's steps run inline (deterministic); a step taken
    only to plan a prefetch must not wait for the load (nothing waits on it yet), so
    kvflow's prefetch hides every load and it reaches the ideal pool's time."""
    w = single(prefix=2048, dynamic=16, output=8, rounds=2, agents=6)
    result = run_kvflow_bench(w, "sim", "h100-llama3-8b", policies=("kvflow", "ideal"))
    p = result["policies"]
    assert p["kvflow"]["device_hit_rate"] > 0.9
    assert p["kvflow"]["e2e_s"] == pytest.approx(p["ideal"]["e2e_s"], rel=1e-9)


def test_sim_concurrent_runs(tmp_path):
    out = tmp_path / "c.json"
    assert (
        main(
            [
                "bench",
                "kvflow",
                "--scenario",
                "concurrent",
                "--backend",
                "sim",
                "--policies",
                "lru,kvflow,ideal",
                "--prefix",
                "64",
                "--dynamic",
                "16",
                "--output",
                "4",
                "--instances",
                "4",
                "--rounds",
                "2",
                "--repeats",
                "2",
                "--json",
                str(out),
            ]
        )
        == 0
    )
    result = orjson.loads(out.read_bytes())
    assert result["scenario"] == "concurrent" and result["sizes"]["instances"] == 4
    assert set(result["policies"]) == {"lru", "kvflow", "ideal"}
    assert all(len(row["e2e_runs_s"]) == 2 for row in result["policies"].values())
    assert result["kvflow_over_hicache"] is None
    assert result["identical_outputs"] is True


def test_builtin_outputs_identical_across_policies(tiny_models):
    w = single(prefix=48, dynamic=8, output=4, rounds=2, agents=5, vocab=256)
    result = run_kvflow_bench(w, "builtin", model=str(tiny_models["llama"]), dtype="float32")
    assert result["identical_outputs"] is True
    p = result["policies"]
    assert p["lru"]["recomputed_tokens"] > p["kvflow"]["recomputed_tokens"]
    assert p["kvflow"]["host_hit_rate"] + p["kvflow"]["device_hit_rate"] > 0.5


def test_builtin_concurrent_outputs_identical_across_policies(tiny_models):
    """Several instances share batches whose makeup differs between policies: in fp32
    the greedy tokens must still match exactly."""
    w = concurrent(prefix=48, dynamic=8, output=4, rounds=1, instances=3, vocab=256)
    result = run_kvflow_bench(
        w, "builtin", model=str(tiny_models["llama"]), dtype="float32", device_prefixes=2
    )
    assert result["identical_outputs"] is True
    assert result["policies"]["kvflow"]["device_hit_rate"] > 0


def test_repeats_rotate_and_report_the_median():
    w = single(prefix=64, dynamic=8, output=2, rounds=1, agents=4)
    seen: list[str] = []
    result = run_kvflow_bench(
        w, "sim", policies=("lru", "kvflow"), repeats=3, progress=lambda line: seen.append(line)
    )
    assert [line.split(":")[0] for line in seen] == ["lru", "kvflow", "kvflow", "lru"] + [
        "lru",
        "kvflow",
    ]
    for row in result["policies"].values():
        assert len(row["e2e_runs_s"]) == 3
        assert row["e2e_s"] == sorted(row["e2e_runs_s"])[1]
    assert list(result["policies"]) == ["lru", "kvflow"]
