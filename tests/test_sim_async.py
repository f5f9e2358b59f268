"""The async driver (the one LLM calls plug into): real concurrency, random completion
order, and still the same world history under every mode."""

from __future__ import annotations

import hashlib

import anyio
import pytest

from agentrt.simulation import AgentStepPlan, TownScenario, TownWorld, simulate, simulate_async


class FakeLLM:
    """Deterministic text per prompt, after a prompt-dependent delay (0-3 ms) so that
    completions arrive in an order unrelated to the step order."""

    def __init__(self, fallback: bool = False) -> None:
        self.fallback = fallback
        self.prefixes: set[str] = set()

    async def run(self, plan: AgentStepPlan) -> list[str] | None:
        self.prefixes.add(plan.prefix)
        outputs = []
        for call in plan.calls:
            digest = hashlib.blake2b(f"{plan.prefix}|{call.text}".encode(), digest_size=4)
            await anyio.sleep(digest.digest()[0] / 85_000)
            outputs.append(f"{call.kind} {digest.hexdigest()}")
        return None if self.fallback else outputs


def run(world, mode, steps, llm, **kw):
    return anyio.run(lambda: simulate_async(world, mode, steps, llm, **kw))


@pytest.mark.parametrize("seed", [0, 3])
@pytest.mark.parametrize("dynamics", ["generative", "dense"])
def test_async_modes_agree_with_llm_outputs(seed, dynamics):
    sc = TownScenario(
        agents=20,
        seed=seed,
        agents_per_tile=10,
        layout="compact",
        start_hour=12.0,
        dynamics=dynamics,
    )
    sync = run(TownWorld(sc), "sync", 12, FakeLLM(), record_deps=True)
    ooo = run(TownWorld(sc, strict=True), "ooo", 12, FakeLLM())
    oracle = run(TownWorld(sc), "oracle", 12, FakeLLM(), true_deps=sync.true_deps)
    assert sync.world_hash == ooo.world_hash == oracle.world_hash
    assert sync.calls == ooo.calls == oracle.calls and sync.agent_steps == 20 * 12
    assert sync.calls > 0


def test_llm_outputs_enter_the_history_and_fallback_matches_virtual_driver():
    sc = TownScenario(agents=20, seed=1, agents_per_tile=10, layout="compact", start_hour=12.0)
    llm = FakeLLM()
    with_llm = run(TownWorld(sc), "ooo", 8, llm)
    fallback = run(TownWorld(sc), "ooo", 8, FakeLLM(fallback=True))
    assert with_llm.world_hash != fallback.world_hash
    assert fallback.world_hash == simulate(TownWorld(sc), "sync", 8).world_hash
    assert llm.prefixes == {r.persona for r in TownWorld(sc).residents}
