"""Two KV tiers in the real engine: every policy yields HF's greedy tokens, host load-back
replaces recompute, prefetch lands before the request, a failed load recomputes."""

from __future__ import annotations

import pytest
from engine_helpers import hf_greedy, load_hf, make_engine, random_prompts, run_to_completion

from agentrt.engine.sampling_params import SamplingParams

FAMILY = "llama"
AGENTS = ["wf/a", "wf/b", "wf/c", "wf/d"]
PREFIX, SUFFIX, NEW = 32, 6, 4
ROUNDS = 3
POLICIES = ["lru", "hicache", "kvflow", "belady", "ideal"]
PARAMS = SamplingParams(max_tokens=NEW, ignore_eos=True)
# page 4: a request needs 11 pages; 24 device pages hold about two agents' prefixes.
POOL = {"page_size": 4, "num_pages": 24, "num_host_pages": 96}


def workload() -> list[tuple[str, list[int]]]:
    """Round-robin agents, each with its fixed prefix and a fresh suffix per call."""
    prefixes = random_prompts(len(AGENTS), PREFIX, PREFIX, 256, seed=11)
    suffixes = iter(random_prompts(len(AGENTS) * ROUNDS, SUFFIX, SUFFIX, 256, seed=12))
    return [(a, prefixes[i] + next(suffixes)) for _ in range(ROUNDS) for i, a in enumerate(AGENTS)]


def ste_before(call: int, calls: list[tuple[str, list[int]]]) -> dict[str, float]:
    """The workflow's STE when call `call` is about to run: steps until each agent's turn."""
    ste: dict[str, float] = {}
    for offset, (agent, _) in enumerate(calls[call:]):
        ste.setdefault(agent, offset)
    return ste


def run_policy(model_dir, policy: str, **overrides):
    engine = make_engine(model_dir, eviction_policy=policy, **{**POOL, **overrides})
    calls = workload()
    if policy == "belady":
        engine.kv.policy.set_future(a for a, _ in calls)
    outs = []
    for i, (agent, prompt) in enumerate(calls):
        engine.kv.update_hints(ste_before(i, calls))
        rid = engine.add_request(prompt, PARAMS, agent_id=agent, prefix_len=PREFIX)
        while engine.has_unfinished_requests():
            outs += [o for o in engine.step() if o.finished and o.request_id == rid]
            engine.check_integrity()
    return engine, [o.token_ids for o in outs]


@pytest.fixture(scope="module")
def runs(tiny_models):
    return {p: run_policy(tiny_models[FAMILY], p) for p in POLICIES}


def test_every_policy_matches_hf(runs, tiny_models):
    hf = load_hf(tiny_models[FAMILY])
    expected = [hf_greedy(hf, prompt, NEW) for _, prompt in workload()]
    for policy, (_, tokens) in runs.items():
        assert tokens == expected, policy


def test_host_tier_replaces_recompute(runs):
    lru = runs["lru"][0].kv.stats
    assert lru.host_hit_tokens == 0 and lru.loaded_pages == 0
    assert lru.recomputed_tokens > len(workload()) * (SUFFIX + 1)  # evictions really hurt
    for policy in ("hicache", "kvflow", "belady"):
        stats = runs[policy][0].kv.stats
        assert stats.loaded_pages > 0 and stats.offloaded_pages > 0, policy
        assert stats.recomputed_tokens < lru.recomputed_tokens, policy
    assert runs["hicache"][0].kv.stats.host_hit_tokens > 0
    ideal = runs["ideal"][0].kv
    assert ideal.host is None and ideal.num_pages == 24 + 96
    assert ideal.stats.device_hit_rate >= runs["kvflow"][0].kv.stats.device_hit_rate


def test_kvflow_prefetch_turns_host_hits_into_device_hits(runs):
    kvflow, hicache = runs["kvflow"][0].kv.stats, runs["hicache"][0].kv.stats
    assert kvflow.prefetch_loads > 0
    assert kvflow.device_hit_tokens > hicache.device_hit_tokens


def _prefix_on_device(engine, tokens: list[int]) -> int:
    return engine.kv.host.match(tokens).device_tokens


def test_prefetch_loads_prefix_before_request(tiny_models):
    engine = make_engine(tiny_models[FAMILY], eviction_policy="kvflow", **POOL)
    calls = workload()
    for agent, prompt in calls[: len(AGENTS)]:  # one round: a's prefix ends up on host
        engine.kv.update_hints({agent: 0})
        run_to_completion_tagged(engine, agent, prompt)
    a_prefix = calls[0][1][:PREFIX]
    assert _prefix_on_device(engine, a_prefix) < PREFIX
    assert engine.kv.host.match(a_prefix).num_tokens > 0  # ... but on host
    engine.kv.update_hints({"wf/a": 1, "wf/b": 2})
    engine.step()  # no requests: just polls hints and plans the prefetch
    while engine.kv.loads_in_flight:
        engine.kv.wait_for_loads()
    engine.check_integrity()
    assert _prefix_on_device(engine, a_prefix) == PREFIX
    before = engine.kv.stats.device_hit_tokens
    run_to_completion_tagged(engine, "wf/a", calls[len(AGENTS)][1])
    assert engine.kv.stats.device_hit_tokens - before == PREFIX
    assert engine.kv.stats.prefetch_late == 0


def run_to_completion_tagged(engine, agent: str, prompt: list[int]) -> list[int]:
    rid = engine.add_request(prompt, PARAMS, agent_id=agent, prefix_len=PREFIX)
    done = None
    while engine.has_unfinished_requests():
        for out in engine.step():
            if out.finished and out.request_id == rid:
                done = out.token_ids
        engine.check_integrity()
    assert done is not None
    return done


def test_failed_load_falls_back_to_recompute(tiny_models):
    engine = make_engine(tiny_models[FAMILY], eviction_policy="hicache", **POOL)
    calls = workload()
    for agent, prompt in calls[: len(AGENTS)]:
        run_to_completion_tagged(engine, agent, prompt)
    a_prompt = calls[len(AGENTS)][1]
    assert engine.kv.host.match(a_prompt[:PREFIX]).nodes  # needs a load
    engine.runner.kv_transfer.fail_next_loads = 1
    got = run_to_completion_tagged(engine, "wf/a", a_prompt)
    assert engine.kv.stats.failed_loads == 1
    hf = load_hf(tiny_models[FAMILY])
    assert got == hf_greedy(hf, a_prompt, NEW)
    # The recomputed pages became the node's device copy: the next call hits on device.
    assert engine.kv.host.match(a_prompt[:PREFIX]).device_tokens == PREFIX


def test_batched_workload_with_in_flight_loads(tiny_models):
    """Many requests at once, tiny device pool: loads, waits and preemptions interleave."""
    hf = load_hf(tiny_models[FAMILY])
    calls = workload()
    engine = make_engine(tiny_models[FAMILY], eviction_policy="hicache", **POOL)
    for agent, prompt in calls[: len(AGENTS)]:
        run_to_completion_tagged(engine, agent, prompt)
    prompts = [p for _, p in calls[len(AGENTS) :]]
    outs = run_to_completion(engine, prompts, PARAMS)
    assert [o.token_ids for o in outs] == [hf_greedy(hf, p, NEW) for p in prompts]
    assert engine.kv.stats.loaded_pages > 0
