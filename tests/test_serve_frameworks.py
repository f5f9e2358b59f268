"""Real agent frameworks against the server: a LangGraph graph (langchain-openai) and
the OpenAI Agents SDK, each making a valid tool call and giving a final answer."""

from __future__ import annotations

import sys
from pathlib import Path

import anyio
import pytest
from engine_helpers import make_engine
from serve_helpers import ServerThread, make_tiny_chat_model

from agentrt.serve.settings import ServeSettings

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))

MODEL = "tiny-chat"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    model = make_tiny_chat_model(tmp_path_factory.mktemp("frameworks") / "tinychat")
    engine = make_engine(model, kv_cache_tokens=8192)
    with ServerThread(engine, ServeSettings(served_model_name=MODEL, grace_seconds=5)) as s:
        yield s
    engine.check_integrity()


def test_langgraph_two_agents_and_a_tool(server):
    from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
    from serve_langgraph import build_graph

    app = build_graph(server.base_url + "/v1", MODEL, max_tokens=48)
    state = app.invoke({"messages": [HumanMessage("What is the weather in Rome?")]})
    human, call, result, answer = state["messages"]
    assert isinstance(call, AIMessage) and len(call.tool_calls) >= 1
    assert call.tool_calls[0]["name"] == "get_weather"
    assert call.tool_calls[0]["args"]["city"] in ("Paris", "Rome", "Oslo")
    assert isinstance(result, ToolMessage) and result.tool_call_id == call.tool_calls[0]["id"]
    assert isinstance(answer, AIMessage) and answer.content and not answer.tool_calls


def test_openai_agents_sdk_tool_call_and_final_answer(server):
    from agents import ToolCallItem, ToolCallOutputItem
    from serve_openai_agents import ask, build_agent

    agent = build_agent(server.base_url + "/v1", MODEL, max_tokens=48)
    result = anyio.run(ask, agent, "What is the weather in Oslo?")
    kinds = [type(item) for item in result.new_items]
    assert ToolCallItem in kinds and ToolCallOutputItem in kinds
    call = next(i for i in result.new_items if isinstance(i, ToolCallItem))
    assert call.raw_item.name == "get_weather"
    output = next(i for i in result.new_items if isinstance(i, ToolCallOutputItem))
    assert output.output in ("rain, 12 C", "sun, 24 C", "snow, -3 C")
    assert isinstance(result.final_output, str) and result.final_output


def test_langgraph_unchanged_gets_learned_graph_hits(tmp_path):
    """The LangGraph example, no hints: after one run the server has learned that the
    answering call follows the tool-calling one, and predicts it in later runs
    (`x_agentrt.agent.predicted_steps` and `agentrt:learned_graph_predictions_total`)."""
    from langchain_core.messages import HumanMessage
    from serve_langgraph import build_graph

    model = make_tiny_chat_model(tmp_path / "tinychat")
    engine = make_engine(model, kv_cache_tokens=8192, eviction_policy="kvflow")
    settings = ServeSettings(served_model_name=MODEL, grace_seconds=5)
    with ServerThread(engine, settings) as server:
        app = build_graph(server.base_url + "/v1", MODEL, max_tokens=48)
        for city in ("Rome", "Paris", "Oslo"):
            app.invoke({"messages": [HumanMessage(f"What is the weather in {city}?")]})
        metrics = server.get("/metrics").text
        learned = server.get("/v1/workflows/learned").json()
    hits = [
        line
        for line in metrics.splitlines()
        if line.startswith("agentrt:learned_graph_predictions_total") and 'outcome="hit"' in line
    ]
    preds = [x for x in metrics.splitlines() if x.startswith("agentrt:learned_graph_pred")]
    assert hits and float(hits[0].split()[-1]) >= 2, (preds, learned)  # runs 2 and 3
    assert learned["kinds"] and learned["kinds"][0]["transitions"]
    engine.check_integrity()
