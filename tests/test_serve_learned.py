"""Learned graphs through a real server: clients that send no hints at all (agents known
by their system prompt's hash) get the steps-to-execution a declared graph of the same
program gives, learned-graph hits show in `x_agentrt` and `/metrics`, the learned graph
exports as JSON, and no policy or hint changes a token."""

from __future__ import annotations

import json

import openai
import pytest
from engine_helpers import make_engine
from serve_helpers import ServerThread, make_tiny_chat_model

from agentrt.graph.ste import steps_to_execution
from agentrt.graph.workflow_state import WorkflowState
from agentrt.learn import read_learned
from agentrt.serve.workflows import graph_from_body

AGENTS = ["planner", "coder", "reviewer"]
SYSTEMS = {a: f"You are the {a} of a small software team. " * 5 for a in AGENTS}


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return make_tiny_chat_model(tmp_path_factory.mktemp("learned") / "tinychat")


def _serve(model_dir, policy: str):
    engine = make_engine(model_dir, kv_cache_tokens=8192, eviction_policy=policy)
    return engine, ServerThread(engine)


def _ask(client, model: str, agent: str, turn: int):
    return client.chat.completions.create(
        model=model,
        messages=[
            {"role": "system", "content": SYSTEMS[agent]},
            {"role": "user", "content": f"task {turn}"},
        ],
        temperature=0,
        max_tokens=4,
    )


def _policy_ste(server) -> dict:
    server.post("/v1/completions", json={"model": str(server.engine.config.model), "prompt": [1]})
    return dict(server.engine.kv.tree.policy.agent_ste)


def test_learned_ste_equals_the_declared_graphs(model_dir, tmp_path):
    engine, thread = _serve(model_dir, "kvflow")
    with thread as server:
        client = openai.OpenAI(base_url=server.base_url + "/v1", api_key="x", max_retries=0)
        model = str(engine.config.model)
        keys: dict[str, str] = {}
        predicted = []
        for turn, agent in enumerate(AGENTS * 2):
            x = _ask(client, model, agent, turn).model_extra["x_agentrt"]["agent"]
            assert x["graph"] == "learned" and x["workflow"] == "anonymous"
            keys[agent] = x["agent_key"]
            predicted.append(x["predicted_steps"])
        assert len(set(keys.values())) == 3 and all(k.startswith("prefix:") for k in keys.values())
        # round 1 teaches the chain; from round 2 each agent was expected next
        assert predicted[:3] == [None, None, None]
        assert all(p is not None and p <= 1 for p in predicted[4:]), predicted

        # the planner runs again (round 3); while its request runs, the declared loop
        # planner -> coder -> reviewer -> planner gives the same steps-to-execution
        graph = graph_from_body(
            {"edges": [["planner", "coder"], ["coder", "reviewer"], ["reviewer", "planner", 5]]}
        )
        state = WorkflowState(graph)
        state.start("planner")
        declared = steps_to_execution(graph, state)
        stream = client.chat.completions.create(
            model=model,
            messages=[
                {"role": "system", "content": SYSTEMS["planner"]},
                {"role": "user", "content": "task 6"},
            ],
            max_tokens=200,
            extra_body={"ignore_eos": True},
            stream=True,
        )
        next(iter(stream))  # the planner's request is running
        learned = _policy_ste(server)
        for _ in stream:
            pass
        assert (
            {a: learned[keys[a]] for a in AGENTS}
            == declared
            == {
                "planner": 0,
                "coder": 1,
                "reviewer": 2,
            }
        )

        metrics = server.get("/metrics").text
        assert 'agentrt:learned_graph_predictions_total{model_name="' in metrics
        hits = [
            line
            for line in metrics.splitlines()
            if line.startswith("agentrt:learned_graph_predictions_total") and "hit" in line
        ]
        assert float(hits[0].split()[-1]) >= 3

        doc = server.get("/v1/workflows/learned").json()
        path = tmp_path / "learned.json"
        path.write_text(json.dumps(doc))
        assert read_learned(path)["kinds"][0]["agents"]  # valid against the schema
        probabilities = {
            (t["src"], t["dst"]): t["probability"] for t in doc["kinds"][0]["transitions"]
        }
        assert probabilities[(keys["planner"], keys["coder"])] == 1.0
    engine.check_integrity()


def test_outputs_are_the_same_under_every_policy_and_hint(model_dir):
    texts = {}
    for policy in ("lru", "kvflow"):
        engine, thread = _serve(model_dir, policy)
        with thread as server:
            client = openai.OpenAI(base_url=server.base_url + "/v1", api_key="x", max_retries=0)
            model = str(engine.config.model)
            texts[policy] = [
                _ask(client, model, agent, turn).choices[0].message.content
                for turn, agent in enumerate(AGENTS * 2)
            ]
        engine.check_integrity()
    assert texts["lru"] == texts["kvflow"]
