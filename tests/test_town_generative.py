"""The generative town dynamics: sleep costs nothing, actions last, conversations are
sequential chains, everything is drawn from the seed, and modes agree on the world."""

from __future__ import annotations

import anyio
import pytest

from agentrt.simulation import TownScenario, TownWorld, run_modes, simulate
from agentrt.simulation import town_generative_calls as gc
from agentrt.simulation.cosim import CosimConfig, cosimulate
from agentrt.simulation.llm_executor import LLMStepExecutor
from agentrt.simulation.world import LLMCall, call_text

# a busy hour on the compact plan: people meet, so conversations happen within steps
BUSY = dict(agents=20, agents_per_tile=10, layout="compact", start_hour=12.0, seed=1)


def run_and_plans(sc: TownScenario, steps: int) -> tuple[TownWorld, dict]:
    """A sync run that also keeps every agent step's plan."""
    world = TownWorld(sc)
    plans = {}
    plan = world.plan

    def keep(obs):
        p = plans[(obs.agent, obs.step)] = plan(obs)
        return p

    world.plan = keep  # type: ignore[method-assign]
    simulate(world, "sync", steps)
    return world, plans


def test_sleeping_agents_make_no_calls_and_a_night_run_costs_nothing():
    sc = TownScenario(agents=30, start_hour=2.0)
    world, plans = run_and_plans(sc, 20)
    assert all(world.state(i, s).asleep for i in range(30) for s in range(21))
    assert all(not p.calls for p in plans.values())
    for mode in ("sync", "ooo"):  # call-less units finish at once, nothing stalls
        res = cosimulate(TownWorld(sc), mode, 20, CosimConfig(replicas=2))
        assert res.calls == 0 and res.makespan == 0 and res.agent_steps == 30 * 20


def test_most_agent_steps_are_idle_and_waking_plans_the_day():
    sc = TownScenario(agents=50, start_hour=6.9, agents_per_tile=25, layout="compact")
    world, plans = run_and_plans(sc, 120)
    idle = sum(1 for p in plans.values() if not p.calls)
    assert idle / len(plans) > 0.8  # the dense town had none
    woke = [
        (i, s) for (i, s) in plans if world.state(i, s).asleep and not world.state(i, s + 1).asleep
    ]
    assert woke
    for i, s in woke:
        texts = [c.text for c in plans[(i, s)].calls]
        assert any("plan for today" in t for t in texts)
        assert any("Break the next hour" in t for t in texts)  # then the first action
    # a kept action needs no call: calls come when it ends (action_left back to 0)
    for (i, s), p in plans.items():
        st = world.state(i, s)
        if not st.asleep and st.action_left > 1 and st.chat_left == 0 and not p.calls:
            assert world.state(i, s + 1).action_left == st.action_left - 1


def conversations(world: TownWorld, steps: int) -> list[tuple[int, int, int]]:
    """(initiator, partner, step) of every conversation started."""
    out = []
    for i in range(world.num_agents):
        for s in range(steps):
            nxt = world.state(i, s + 1)
            if nxt.talk_to >= 0 and nxt.chat_step == s and world.state(i, s).chat_left == 0:
                out.append((i, nxt.talk_to, s))
    return out


def test_conversations_are_sequential_chains_and_both_partners_talk():
    steps = 40
    world, plans = run_and_plans(TownScenario(**BUSY), steps)
    talks = [(i, s) for (i, s), p in plans.items() if any(c.history for c in p.calls)]
    assert len(talks) >= 3
    lengths, joined = set(), 0
    for i, s in talks:
        calls = plans[(i, s)].calls
        ask = next(k for k, c in enumerate(calls) if "start a conversation" in c.text)
        turns = calls[ask + 1 : -3]
        utterances = len(turns) // 2
        assert 2 <= utterances <= gc.MAX_UTTERANCES and len(turns) == 2 * utterances
        assert [c.history for c in turns] == [False, True] * utterances
        assert calls[-3].history and "Summarize your conversation" in calls[-3].text
        lengths.add(utterances)
        j = world.state(i, s + 1).talk_to
        left = world.state(i, s + 1).chat_left
        assert j >= 0 and left == gc.chat_steps(utterances, world.scenario.day_steps)
        if s + left + 1 > steps or world.state(j, s + 2).talk_to != i:
            continue
        joined += 1  # the partner joined at s + 1 without a conversation call of its own
        assert not any(c.history for c in plans[(j, s + 1)].calls)
        for t in range(s + 1, s + left + 1):  # both stay put, and finish together
            assert world.position(i, t + 1) == world.position(i, t)
            assert world.position(j, t + 1) == world.position(j, t) or t == s + 1
            if t >= s + 2:
                assert world.state(i, t).chat_left == world.state(j, t).chat_left
        assert world.state(i, s + left + 1).talk_to == world.state(j, s + left + 1).talk_to == -1
    assert joined >= 1
    assert len(lengths) > 1  # lengths are drawn, not fixed


def test_history_calls_see_the_conversation_so_far():
    calls = gc.conversation_calls("Ann", "Bo", 3)
    outputs = [f"out{k}" for k in range(len(calls))]
    # utterance 3 (index 5) sees utterances 1 and 2 (indices 1 and 3), not the summaries
    assert call_text(calls, 5, outputs).splitlines()[1:] == ["out1", "out3"]
    assert call_text(calls, 0, outputs) == calls[0].text
    plain = [LLMCall("decide", "q", 4)]
    assert call_text(plain, 0, []) == "q"


class _Out:
    def __init__(self, text: str) -> None:
        self.text, self.num_cached_tokens, self.error = text, 0, None


class _Builder:
    def build(self, prefix: str, text: str) -> tuple[list[int], int]:
        return list(text.encode()), 0


class _RecordingLLM:
    """Answers each prompt with its call number; records when each call ran."""

    def __init__(self) -> None:
        self.prompts: list[str] = []
        self.events: list[tuple[str, int]] = []

    async def complete(self, ids, params, call):
        k = len(self.prompts)
        self.prompts.append(bytes(ids).decode())
        self.events.append(("start", k))
        await anyio.sleep(0.001)
        self.events.append(("end", k))
        return _Out(f"line {k}")


def test_llm_executor_runs_a_conversation_in_order_with_its_history():
    from agentrt.simulation.world import AgentStepPlan

    llm = _RecordingLLM()
    ex = LLMStepExecutor([llm], [_Builder()])  # type: ignore[list-item]
    plan = AgentStepPlan(0, 0, "persona", tuple(gc.conversation_calls("Ann", "Bo", 4)))
    outs = anyio.run(ex.run, plan)
    assert outs == [f"line {k}" for k in range(len(plan.calls))]
    assert llm.events == [(e, k) for k in range(len(plan.calls)) for e in ("start", "end")]
    last_utterance = llm.prompts[7]  # relationship/utterance x4: utterance 4 is call 7
    assert last_utterance.splitlines()[1:] == ["line 1", "line 3", "line 5"]


def test_cosim_conversation_prompts_grow_with_the_conversation(monkeypatch):
    from agentrt.engine.llm_engine import LLMEngine

    lengths: dict[str, int] = {}
    original = LLMEngine.add_request

    def spy(self, ids, params, request_id=None, **kw):
        lengths[request_id] = len(ids)
        return original(self, ids, params, request_id=request_id, **kw)

    monkeypatch.setattr(LLMEngine, "add_request", spy)
    sc = TownScenario(**BUSY)
    world, plans = run_and_plans(sc, 12)
    res = cosimulate(TownWorld(sc), "ooo", 12, CosimConfig(replicas=2))
    assert res.world_hash == simulate(TownWorld(sc), "sync", 12).world_hash
    grew = 0
    for (i, s), p in plans.items():
        hist = [k for k, c in enumerate(p.calls) if c.history and "say next" in c.text]
        sizes = [lengths[f"{i}/{s}/{k}"] for k in hist]
        assert sizes == sorted(sizes)
        grew += len(sizes) > 1 and sizes[-1] > sizes[0]
    assert grew >= 1


def test_same_seed_same_world_other_seed_other_world():
    a = simulate(TownWorld(TownScenario(**BUSY)), "sync", 20)
    b = simulate(TownWorld(TownScenario(**BUSY)), "sync", 20)
    c = simulate(TownWorld(TownScenario(**(BUSY | {"seed": 2}))), "sync", 20)
    assert (a.world_hash, a.calls) == (b.world_hash, b.calls)
    assert a.world_hash != c.world_hash


@pytest.mark.parametrize("layout", ["smallville", "compact"])
def test_modes_agree_on_the_default_world(layout):
    sc = TownScenario(agents=100, seed=3, start_hour=12.0, layout=layout)
    res = run_modes(lambda: TownWorld(sc), 30)
    strict = simulate(TownWorld(sc, strict=True), "ooo", 30)
    assert {r.world_hash for r in res.values()} == {strict.world_hash}
    assert len({r.calls for r in res.values()}) == 1 and res["sync"].calls > 100
    assert res["oracle"].makespan <= res["ooo"].makespan < res["sync"].makespan


def test_no_second_conversation_with_the_same_partner():
    world, _ = run_and_plans(TownScenario(**BUSY), 60)
    pairs = [(min(i, j), max(i, j)) for i, j, _ in conversations(world, 60)]
    initiated = {}
    for i, j, s in conversations(world, 60):
        initiated.setdefault((i, j), []).append(s)
    assert all(len(v) == 1 for v in initiated.values()), initiated
    assert pairs
