"""Tool-call pauses through a real server: an answer ending in tool calls keeps its
conversation's KV pinned (`x_agentrt.pinned_until`) until the conversation's next request
or the pin's time is up; not when the client says it is the last step; within the pin
budget; and a pin never makes a request fail (it gives way)."""

from __future__ import annotations

import time

import openai
import pytest
from engine_helpers import make_engine
from serve_helpers import ServerThread, make_tiny_chat_model

from agentrt.serve.settings import ServeSettings

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {"city": {"enum": ["Paris", "Rome"]}},
            "required": ["city"],
        },
    },
}
FORCE = {"type": "function", "function": {"name": "get_weather"}}


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return make_tiny_chat_model(tmp_path_factory.mktemp("pauses") / "tinychat")


def _server(model_dir, kv_cache_tokens=8192, pin_budget=0.25):
    """Pins by the `pause` rule: these tests are about what a pin does, not whether a
    pause is worth one (that depends on measured times: `test_pin_value.py`)."""
    engine = make_engine(model_dir, kv_cache_tokens=kv_cache_tokens)
    settings = ServeSettings(grace_seconds=5, pin_budget=pin_budget, pin_rule="pause")
    return engine, ServerThread(engine, settings)


def _client(server):
    return openai.OpenAI(base_url=server.base_url + "/v1", api_key="x", max_retries=0)


def _ask_tool(client, model, question: str, **extra):
    return client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": question}],
        tools=[WEATHER],
        tool_choice=FORCE,
        max_tokens=30,
        temperature=0,
        extra_body=extra or None,
    )


def test_tool_call_answer_pins_until_the_next_request(model_dir):
    engine, thread = _server(model_dir)
    with thread as server:
        client = _client(server)
        model = str(engine.config.model)
        question = "What is the weather in Rome? " * 4
        resp = _ask_tool(client, model, question)
        assert resp.choices[0].finish_reason == "tool_calls"
        until = resp.model_extra["x_agentrt"]["pinned_until"]
        assert until is not None and until > time.time()
        key = resp.model_extra["x_agentrt"]["agent"]["workflow"]  # anonymous: one message
        conv = next(iter(server.app.state.service.agents.pin_book.keys()))
        assert conv.startswith("conv:") and key == "anonymous"
        server.post("/v1/completions", json={"model": model, "prompt": [1]})  # a step
        assert conv in engine.kv.pins

        call = resp.choices[0].message.tool_calls[0]
        follow = client.chat.completions.create(
            model=model,
            messages=[
                {"role": "user", "content": question},
                {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
                {"role": "tool", "tool_call_id": call.id, "content": "sunny"},
            ],
            max_tokens=3,
            temperature=0,
        )
        x = follow.model_extra["x_agentrt"]
        assert x["pinned_until"] is None  # it called no tool
        assert x["cached_tokens"] > 0  # the paused conversation was still there
        assert conv not in engine.kv.pins
    engine.check_integrity()


def test_last_step_is_not_pinned(model_dir):
    engine, thread = _server(model_dir)
    with thread as server:
        resp = _ask_tool(_client(server), str(engine.config.model), "Rome?", is_last_step=True)
        assert resp.model_extra["x_agentrt"]["pinned_until"] is None
        assert len(server.app.state.service.agents.pin_book) == 0


def test_a_zero_budget_pins_nothing(model_dir):
    engine, thread = _server(model_dir, pin_budget=0.0)
    with thread as server:
        resp = _ask_tool(_client(server), str(engine.config.model), "Paris?")
        assert resp.model_extra["x_agentrt"]["pinned_until"] is None


def test_pins_give_way_to_requests(model_dir):
    """A small pool, every page of it allowed to be pinned: paused conversations fill it,
    then a request that needs most of the pool still runs (pins are shed)."""
    engine, thread = _server(model_dir, kv_cache_tokens=512, pin_budget=1.0)
    with thread as server:
        client = _client(server)
        model = str(engine.config.model)
        pinned = 0
        for i in range(6):
            resp = _ask_tool(client, model, f"Weather question number {i}, Rome or Paris? " * 3)
            pinned += resp.model_extra["x_agentrt"]["pinned_until"] is not None
        book = server.app.state.service.agents.pin_book
        assert pinned >= 2 and book.pinned_pages <= book.budget_pages  # the rest over budget
        big = client.completions.create(model=model, prompt=[5] * 400, max_tokens=8)
        assert big.choices[0].finish_reason == "length"
        assert engine.kv.pins.shed_count > 0
    engine.check_integrity()


def test_delete_of_the_workflow_releases_its_pin(model_dir):
    engine, thread = _server(model_dir)
    with thread as server:
        resp = _ask_tool(_client(server), str(engine.config.model), "Rome?", workflow_id="w7")
        assert resp.model_extra["x_agentrt"]["pinned_until"] is not None
        assert "w7" in server.app.state.service.agents.pin_book
        assert server.delete("/v1/workflows/w7").status_code == 200
        assert "w7" not in server.app.state.service.agents.pin_book
        server.post("/v1/completions", json={"model": str(engine.config.model), "prompt": [1]})
        assert "w7" not in engine.kv.pins
    engine.check_integrity()


def test_a_workflow_further_along_is_not_starved_by_new_ones(model_dir):
    """One running slot: the second step of a workflow that began first overtakes a
    flood of new workflows' first requests queued before it (program-level FCFS)."""
    import anyio

    engine = make_engine(model_dir, kv_cache_tokens=8192, max_num_seqs=1)
    with ServerThread(engine) as server:
        model = str(engine.config.model)
        client = openai.AsyncOpenAI(base_url=server.base_url + "/v1", api_key="x")
        finished: list[str] = []

        async def call(name: str, workflow: str, tokens: int) -> None:
            await client.completions.create(
                model=model,
                prompt=[7 + len(finished)] * 8,
                max_tokens=tokens,
                extra_body={"ignore_eos": True, "workflow_id": workflow},
            )
            finished.append(name)

        async def main() -> None:
            await call("old-1", "old", 2)
            async with anyio.create_task_group() as tg:
                for i in range(6):
                    tg.start_soon(call, f"new-{i}", f"new-{i}", 48)
                with anyio.fail_after(30):  # the flood is in the engine, queued
                    while len(engine.requests) < 6:
                        await anyio.sleep(0.01)
                tg.start_soon(call, "old-2", "old", 2)

        anyio.run(main)
    assert finished.index("old-2") <= 2, finished
    engine.check_integrity()


def test_tool_agent_bench_workload_runs_and_pins(model_dir):
    """`bench serve --workload tool-agent`'s clients: ReAct loops whose answers pin."""
    import anyio

    from agentrt.serve.bench_tool_agent import ToolAgentWorkload, run_tool_agents

    engine, thread = _server(model_dir, pin_budget=0.5)
    workload = ToolAgentWorkload(
        workflows=2, turns=2, result_words=10, system_words=20, pause_scale=0.02
    )
    with thread as server:
        result = anyio.run(run_tool_agents, server.base_url, workload)
    assert result["failures"] == [] and result["pinned_answers"] == 4
    least = min(sum(workload.pause(w, t) for t in range(2)) for w in range(2))
    assert result["jct_mean_s"] > least  # each job waits out its pauses
    assert result["device_hit_rate"] > 0
    engine.check_integrity()
