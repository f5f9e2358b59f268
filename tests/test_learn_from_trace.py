"""Learning from a trace the real runtime recorded: the KVFlow concurrent shape run by
`Runtime` on the simulated engine, its trace read back, learned offline, converted to a
`StepGraph` and compared with the declared graph."""

from __future__ import annotations

import math

import anyio
import pytest

from agentrt.bench.kvflow_workloads import IdsTokenizer, KVFlowWorkload
from agentrt.engine.async_llm import AsyncLLM
from agentrt.engine.config import EngineConfig
from agentrt.engine.llm_engine import LLMEngine
from agentrt.engine.prompt import PromptBuilder
from agentrt.graph.ste import steps_to_execution
from agentrt.graph.workflow_state import WorkflowState
from agentrt.learn import AgentKey, LearnedGraphs, to_step_graph
from agentrt.learn.from_trace import learn_from_records
from agentrt.scheduler.runtime import Runtime
from agentrt.trace import TraceReader
from agentrt.trace.schema import CallRecord

ROUNDS = 3


def record_trace(path, workload: KVFlowWorkload) -> list[CallRecord]:
    engine = LLMEngine.from_config(
        EngineConfig(
            backend="sim", profile="h100-llama3-8b", page_size=16, num_pages=512, max_num_seqs=8
        )
    )

    async def run():
        async with AsyncLLM(engine) as llm:
            runtime = Runtime(llm, PromptBuilder(IdsTokenizer()), trace=path)
            results = await runtime.run(workload.workflow(), workload.inputs())
            runtime.trace.close()
        assert all(r.ok for r in results)

    anyio.run(run)
    return list(TraceReader(path))


@pytest.fixture(scope="module")
def trace(tmp_path_factory):
    workload = KVFlowWorkload("concurrent", 4, 4, ROUNDS, prefix=48, dynamic=8, output=2)
    records = record_trace(tmp_path_factory.mktemp("t") / "trace.jsonl", workload)
    assert len(records) == 4 * 4 * ROUNDS
    return workload, records


def test_the_learned_graph_of_a_recorded_run_is_the_declared_one(trace):
    workload, records = trace
    graphs = learn_from_records(records)
    a1, a2, a3, a4 = workload.agent_ids()
    learner = graphs.learner(a1)
    assert graphs.kinds == [a1] and graphs.live_workflows == 0
    assert learner.probabilities() == {
        a1: {a2: 1.0},
        a2: {a3: 1.0},
        a3: {a4: 1.0},
        a4: {a1: (ROUNDS - 1) / ROUNDS},
    }
    assert learner.ends == {a4: 4} and learner.starts == {a1: 4}
    learned = to_step_graph(learner)
    declared = workload.workflow().graph
    rename = {f"{workload.name}/{name}": name for name in declared.agents}
    assert [(rename[u], rename[v]) for u, v in learned.forward_edges] == declared.forward_edges
    assert [(rename[e.src], rename[e.dst], e.max_iterations) for e in learned.back_edges] == [
        (e.src, e.dst, e.max_iterations) for e in declared.back_edges
    ]


def test_the_learned_ste_table_matches_the_declared_ste_at_each_agent(trace):
    workload, records = trace
    learner = learn_from_records(records).learner(workload.agent_ids()[0])
    table = learner.ste_table()
    declared = workload.workflow().graph
    state = WorkflowState(declared)
    for _ in range(len(declared)):  # the first round: every agent once
        (agent,) = state.ready
        state.start(agent)
        ste = steps_to_execution(declared, state)
        row = table[f"{workload.name}/{agent}"]
        for other, value in ste.items():
            if other != agent and math.isfinite(value):
                assert row[f"{workload.name}/{other}"] == value
        state.finish(agent)


def test_calls_without_an_agent_id_are_known_by_their_prefix_and_others_skipped(trace):
    workload, records = trace
    keys = AgentKey(16)
    anonymous = [r.model_copy(update={"agent_id": ""}) for r in records]
    graphs = learn_from_records(anonymous, LearnedGraphs(), keys)
    (kind,) = graphs.kinds
    assert kind == keys.of(prefix_ids=workload.prefixes[0])
    assert sorted(graphs.learner(kind).agents) == sorted(
        keys.of(prefix_ids=p) for p in workload.prefixes
    )
    bare = [r.model_copy(update={"agent_id": "", "prompt_token_ids": None}) for r in records]
    assert learn_from_records(bare).kinds == []
