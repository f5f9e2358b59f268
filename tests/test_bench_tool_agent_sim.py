"""The tool-agent workload on the `sim` backend (`bench_tool_agent_sim`): ReAct loops in
process on the engine's virtual clock, pinned by the server's own `AgentTracker`.
Deterministic; every workflow ends; pins keep paused conversations, so fewer prompt
tokens are recomputed; the cost rule declines pins that cannot pay."""

from __future__ import annotations

import json

import pytest

from agentrt.engine import loader
from agentrt.engine.config import EngineConfig
from agentrt.engine.llm_engine import LLMEngine
from agentrt.serve.bench_tool_agent import ToolAgentWorkload, ToolMode, mode_parts
from agentrt.serve.bench_tool_agent_sim import ToolAgentTokens, run_tool_agents_sim

PAGE = 16


@pytest.fixture(scope="module")
def texts() -> ToolAgentTokens:
    workload = ToolAgentWorkload(workflows=8, turns=3, system_words=100, result_words=100)
    return ToolAgentTokens(workload, loader.load_tokenizer(loader.resolve_model_dir(None)))


def _run(texts: ToolAgentTokens, pin_budget: float, rule: str = "cost") -> dict:
    wl = texts.workload
    all_pages = sum(-(-texts.conversation_tokens(w) // PAGE) for w in range(wl.workflows))
    config = EngineConfig(
        backend="sim", profile="h100-llama3-8b", page_size=PAGE, num_pages=all_pages // 2
    )
    engine = LLMEngine.from_config(config)
    result = run_tool_agents_sim(engine, texts, pin_budget, rule)
    assert not engine.has_unfinished_requests()
    engine.check_integrity()
    return result


def test_it_is_deterministic_and_every_workflow_waits_out_its_pauses(texts):
    first, again = _run(texts, 1.0, "pause"), _run(texts, 1.0, "pause")
    assert first == again
    wl = texts.workload
    assert first["failures"] == []
    assert len(first["jct_s"]) == wl.workflows
    for w, jct in enumerate(first["jct_s"]):
        assert jct > sum(wl.pause(w, t) for t in range(wl.turns))


def test_pins_keep_paused_conversations_so_less_is_recomputed(texts):
    plain, pinned = _run(texts, 0.0), _run(texts, 1.0, "pause")
    assert plain["pinned_answers"] == 0 and plain["pins_shed"] == 0
    assert pinned["pinned_answers"] > texts.workload.workflows
    assert pinned["prompt_tokens"] == plain["prompt_tokens"]
    assert pinned["recomputed_tokens"] < plain["recomputed_tokens"]
    assert pinned["device_hit_rate"] > plain["device_hit_rate"]


def test_the_cost_rule_declines_pins_of_conversations_cheap_to_recompute(texts):
    """~650-token conversations each hold a quarter of this pool: reloading one costs
    a few ms of an H100, less than the pool share held over a pause."""
    by_pause, by_cost = _run(texts, 1.0, "pause"), _run(texts, 1.0, "cost")
    assert by_cost["pinned_answers"] < by_pause["pinned_answers"] / 2


def test_the_bench_sizes_the_host_tier_by_the_host_ratio_and_ideal_bounds_it(tmp_path):
    """`--host-ratio` sizes hicache's host tier as a multiple of the device pool (as
    SGLang's `--hicache-ratio`): a small one drops what a larger one loads back; `ideal`
    keeps everything on the device."""
    from agentrt.cli import main

    def run(ratio: float) -> dict:
        out = tmp_path / f"ratio{ratio}.json"
        argv = ["bench", "serve", "--workload", "tool-agent", "--backend", "sim",
                "--clients", "6", "--pool-share", "0.3", "--modes", "hicache,ideal",
                "--host-ratio", str(ratio), "--json", str(out)]  # fmt: skip
        assert main(argv) == 0
        return json.loads(out.read_text())

    small, large = run(0.25), run(2.0)
    assert small["host_ratio"] == 0.25 and large["host_ratio"] == 2.0
    tight, roomy = small["results"]["hicache"], large["results"]["hicache"]
    assert tight["recomputed_tokens"] > roomy["recomputed_tokens"]
    assert tight["host_loaded_tokens"] < roomy["host_loaded_tokens"]
    ideal = large["results"]["ideal"]
    assert ideal["host_loaded_tokens"] == 0
    assert ideal["recomputed_tokens"] <= roomy["recomputed_tokens"]


def test_modes_name_the_policy_the_host_load_fallback_and_the_pin_rule():
    assert mode_parts("hicache") == ToolMode("hicache", None, waits_for_room=False)
    assert mode_parts("hicache+wait+pin") == ToolMode("hicache", "cost", waits_for_room=True)
    assert mode_parts("lru+pin-pause") == ToolMode("lru", "pause", waits_for_room=False)
    with pytest.raises(KeyError):
        mode_parts("hicache+pin+pin")


def test_waiting_for_room_loads_what_sglangs_hicache_recomputes(tmp_path):
    """`hicache` recomputes a host-held conversation that finds no device room (SGLang's
    `load_back`, all or nothing; the bench passes `--recompute-when-no-room`); with
    `+wait` (agentrt's default) the request waits for room and loads it."""
    from agentrt.cli import main

    out = tmp_path / "wait.json"
    argv = ["bench", "serve", "--workload", "tool-agent", "--backend", "sim",
            "--clients", "8", "--pool-share", "0.3", "--modes", "hicache,hicache+wait",
            "--json", str(out)]  # fmt: skip
    assert main(argv) == 0
    results = json.loads(out.read_text())["results"]
    sglang, waits = results["hicache"], results["hicache+wait"]
    assert waits["recomputed_tokens"] < sglang["recomputed_tokens"]
    assert waits["host_loaded_tokens"] > sglang["host_loaded_tokens"]
