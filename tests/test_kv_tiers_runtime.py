"""The runtime feeds the KV manager: prefix lengths tag agents' prefixes, STE hints reach
the kvflow policy, and outputs do not depend on the policy."""

from __future__ import annotations

import pytest
from runtime_helpers import assert_kv_clean, tiny_engine, tiny_runtime
from test_runtime import review_loop

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend():
    return "asyncio"


async def _run(tiny_models, policy: str):
    engine = tiny_engine(
        tiny_models, eviction_policy=policy, page_size=4, num_pages=64, num_host_pages=128
    )
    seen: list[dict] = []
    update = engine.kv.policy.update_hints
    engine.kv.policy.update_hints = lambda hints: (seen.append(dict(hints)), update(hints))
    async with tiny_runtime(engine) as rt:
        results = await rt.run(review_loop([]), ["sort a list", "parse a file"])
    assert all(r.ok for r in results), [r.error for r in results]
    assert_kv_clean(engine)
    return engine, [r.results for r in results], seen


async def test_runtime_tags_prefixes_and_publishes_hints(tiny_models):
    engine, kvflow_results, seen = await _run(tiny_models, "kvflow")
    kv = engine.kv
    agents = {"review/planner", "review/coder", "review/reviewer"}
    assert set(kv.agent_prefixes) == agents
    for agent, tokens in kv.agent_prefixes.items():
        node = kv.tree.match_prefix(tokens).node
        assert agent in node.agents
    # the HintBoard reached the policy: some update saw the coder one step away
    assert any(h.get("review/coder") == 1 for h in seen)
    _, lru_results, _ = await _run(tiny_models, "lru")
    assert kvflow_results == lru_results
