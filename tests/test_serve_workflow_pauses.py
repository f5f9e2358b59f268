"""Tool pauses reported for a declared workflow (`PATCH /v1/workflows/{id}` with
`tool_pauses`), through a real server: the agent's latest answer in that workflow is
pinned until its next request (or the workflow's DELETE); an agent with no answer yet,
or a pin over the budget, is a soft "not pinned"; a malformed report is a 400 for that
report only."""

from __future__ import annotations

import httpx
import pytest
from engine_helpers import make_engine
from serve_helpers import ServerThread, make_tiny_chat_model

from agentrt.serve.agents import pause_key
from agentrt.serve.settings import ServeSettings


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return make_tiny_chat_model(tmp_path_factory.mktemp("wf-pauses") / "tinychat")


def _server(model_dir, pin_budget: float = 0.25) -> ServerThread:
    engine = make_engine(model_dir, kv_cache_tokens=8192)
    settings = ServeSettings(grace_seconds=5, pin_budget=pin_budget, pin_rule="pause")
    return ServerThread(engine, settings)  # (whether a pause pays: test_pin_value.py)


def _declare(server, workflow_id: str) -> None:
    body = {"workflow_id": workflow_id, "graph": {"edges": [["a", "b"]]}}
    assert server.post("/v1/workflows", json=body).status_code == 200


def _complete(server, workflow_id: str, agent: str) -> dict:
    model = server.get("/v1/models").json()["data"][0]["id"]
    body = {
        "model": model,
        "prompt": "Find the weather in Paris and answer in one word.",
        "max_tokens": 3,
        "temperature": 0,
        "workflow_id": workflow_id,
        "agent_id": agent,
    }
    answer = server.post("/v1/completions", json=body)
    assert answer.status_code == 200, answer.text
    return answer.json()


def _patch(server, workflow_id: str, body: dict) -> httpx.Response:
    return httpx.patch(f"{server.base_url}/v1/workflows/{workflow_id}", json=body, timeout=30)


def _pause(server, workflow_id: str, agent: str) -> dict:
    answer = _patch(server, workflow_id, {"tool_pauses": [{"agent": agent, "tools": ["search"]}]})
    assert answer.status_code == 200, answer.text
    return answer.json()["tool_pauses"][agent]


def test_a_reported_pause_pins_the_agents_answer_until_its_next_request(model_dir):
    with _server(model_dir) as server:
        book = server.app.state.service.agents.pin_book
        _declare(server, "w")
        _complete(server, "w", "a")
        paused = _pause(server, "w", "a")
        assert paused["outcome"] == "pinned" and paused["pinned_until"] is not None
        assert pause_key("w", "a") in book
        _complete(server, "w", "b")  # another agent's request leaves it pinned
        assert pause_key("w", "a") in book
        _complete(server, "w", "a")  # the agent's next request releases it
        assert pause_key("w", "a") not in book
        assert "search" in server.app.state.service.agents.pauses.tools  # the pause learned


def test_delete_releases_the_pins_of_its_agents(model_dir):
    with _server(model_dir) as server:
        book = server.app.state.service.agents.pin_book
        _declare(server, "w")
        _complete(server, "w", "a")
        assert _pause(server, "w", "a")["pinned_until"] is not None
        assert server.delete("/v1/workflows/w").json()["deleted"] is True
        assert pause_key("w", "a") not in book


def test_nothing_to_pin_or_no_room_is_soft(model_dir):
    with _server(model_dir) as server:
        _declare(server, "w")
        paused = _pause(server, "w", "a")  # no answer of `a` yet
        assert paused["pinned_until"] is None and paused["outcome"].startswith("not pinned")
    with _server(model_dir, pin_budget=0.0) as server:
        _declare(server, "w")
        _complete(server, "w", "a")
        paused = _pause(server, "w", "a")
        assert paused == {"pinned_until": None, "outcome": "not pinned: over the pin budget"}
        _complete(server, "w", "a")  # and requests go on as before


@pytest.mark.parametrize(
    "body",
    [
        {"tool_pauses": {"agent": "a", "tools": ["search"]}},
        {"tool_pauses": [{"agent": "a"}]},
        {"tool_pauses": [{"agent": "a", "tools": []}]},
        {"tool_pauses": [{"agent": "a", "tools": [""]}]},
        {"tool_pauses": [{"agent": 3, "tools": ["search"]}]},
        {"tool_pauses": ["a"]},
    ],
)
def test_malformed_reports_are_400_and_change_nothing(model_dir, body):
    with _server(model_dir) as server:
        _declare(server, "w")
        _complete(server, "w", "a")
        answer = _patch(server, "w", body)
        assert answer.status_code == 400, answer.text
        assert answer.json()["error"]["param"] == "tool_pauses"
        assert len(server.app.state.service.agents.pin_book) == 0
        assert _patch(server, "nope", {"tool_pauses": []}).status_code == 404
        _complete(server, "w", "b")  # the workflow goes on
