"""`agentrt replay --policy kvflow-learned [--graph FILE]`: a recorded agent loop replayed
with the steps-to-execution learned from its own calls (or from an exported learned
graph) beats `kvflow` without hints, and gives the same tokens."""

from __future__ import annotations

import json

import pytest
from test_learn_from_trace import record_trace

from agentrt.bench.kvflow_workloads import single
from agentrt.cli import main
from agentrt.learn import export_learned
from agentrt.learn.from_trace import learn_from_records


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """The KVFlow single shape (6 agents, 4 rounds) as the runtime recorded it on sim."""
    path = tmp_path_factory.mktemp("loop") / "loop.jsonl"
    records = record_trace(path, single(prefix=512, dynamic=16, output=4, rounds=4, agents=6))
    return path, records


def _replay(path, tmp_path, *extra) -> dict:
    out = tmp_path / "r.json"
    argv = ["replay", str(path), "--backend", "sim", "--dispatch", "dependency"]
    # three prefixes fit on the device, every prefix on the host tier
    argv += ["--kv-cache-tokens", str(3 * 512 + 256), "--host-kv-cache-tokens", "16384"]
    argv += ["--no-progress", "--json", str(out), "--jobs", "1", *extra]
    assert main(argv) == 0
    return json.loads(out.read_text())


def test_learned_hints_beat_kvflow_without_hints(recorded, tmp_path):
    path, _ = recorded
    results = _replay(path, tmp_path, "--policy", "kvflow,kvflow-learned")
    plain, learned = results["kvflow"], results["kvflow-learned"]
    assert learned["completed"] == plain["completed"] == 24
    assert learned["device_hit_rate"] > plain["device_hit_rate"]
    assert learned["duration_s"] < plain["duration_s"]
    assert learned["config"]["policy"] == "kvflow-learned"


def test_a_graph_exported_by_a_server_starts_the_replay_warm(recorded, tmp_path):
    path, records = recorded
    graph = tmp_path / "learned.json"
    graph.write_text(json.dumps(export_learned(learn_from_records(records))))
    cold = _replay(path, tmp_path, "--policy", "kvflow-learned")["kvflow-learned"]
    warm = _replay(path, tmp_path, "--policy", "kvflow-learned", "--graph", str(graph))
    assert warm["kvflow-learned"]["device_hit_rate"] > cold["device_hit_rate"]


def test_graph_errors_are_one_line(recorded, tmp_path):
    path, _ = recorded
    bad = tmp_path / "bad.json"
    bad.write_text('{"schema": "nope"}')
    with pytest.raises(SystemExit, match="--graph"):
        main(["replay", str(path), "--policy", "kvflow-learned", "--graph", str(bad)])
    with pytest.raises(SystemExit, match="needs --policy kvflow-learned"):
        main(["replay", str(path), "--policy", "kvflow", "--graph", str(bad)])
