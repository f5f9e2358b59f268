"""Request hints (fields, aliases, headers, nvext; accepted / clipped / ignored), declared
workflows and KVFlow's update, through a real server and the `openai` client: the
steps-to-execution they imply reach the engine's kvflow policy, and never change tokens."""

from __future__ import annotations

import math

import httpx
import openai
import pytest
from engine_helpers import make_engine
from serve_helpers import ServerThread, make_tiny_chat_model

from agentrt.serve.hints import read_hints
from agentrt.serve.workflows import WorkflowBook, graph_from_body

SYSTEM = "You are the planner of a team of agents. " * 6


# -- parsing ---------------------------------------------------------------------------


def test_body_fields_are_read_and_accepted():
    hints = read_hints(
        {"workflow_id": "w1", "agent_id": "planner", "step_id": 3, "priority": -5}, {}
    )
    assert (hints.workflow_id, hints.agent_id, hints.step_id, hints.priority) == (
        "w1",
        "planner",
        "3",
        -5,
    )
    assert set(hints.outcome.values()) == {"accepted"}


@pytest.mark.parametrize("alias", ["session_id", "program_id", "job_id"])
def test_workflow_aliases(alias):
    hints = read_hints({alias: "s9"}, {})
    assert hints.workflow_id == "s9" and hints.outcome == {alias: "accepted"}


def test_canonical_name_wins_over_alias_and_header():
    hints = read_hints({"workflow_id": "a", "session_id": "b"}, {"x-workflow-id": "c"})
    assert hints.workflow_id == "a"


def test_headers_when_the_body_has_none():
    hints = read_hints({}, {"x-workflow-id": "w", "x-agent-id": "coder"})
    assert (hints.workflow_id, hints.agent_id) == ("w", "coder")
    assert hints.outcome == {"x-workflow-id": "accepted", "x-agent-id": "accepted"}


def test_nvext_agent_context_and_hints():
    nvext = {
        "agent_context": {"session_id": "s", "agent_id": "a"},
        "agent_hints": {"priority": 5000, "osl": 512},
    }
    hints = read_hints({"nvext": nvext}, {})
    assert (hints.workflow_id, hints.agent_id, hints.priority) == ("s", "a", 1000)
    assert hints.outcome["nvext.agent_hints.priority"] == "clipped to 1000"
    assert hints.outcome["nvext.agent_hints.osl"].startswith("ignored")


def test_bad_values_are_ignored_not_errors():
    hints = read_hints(
        {
            "workflow_id": "x" * 300,
            "agent_id": {"no": 1},
            "priority": "high",
            "is_last_step": "yes",
        },
        {},
    )
    assert hints.workflow_id is None and hints.agent_id is None and hints.priority == 0
    assert all(v.startswith("ignored") for v in hints.outcome.values()), hints.outcome
    assert not read_hints({}, {}).given


def test_continuum_is_last_step():
    hints = read_hints({"job_id": "j", "is_last_step": True}, {})
    assert hints.workflow_id == "j" and hints.is_last_step


# -- the workflow book -----------------------------------------------------------------


def test_declared_chain_publishes_ste_and_advances_with_requests():
    published = []
    book = WorkflowBook(published.append)
    graph = graph_from_body({"edges": [["plan", "code"], ["code", "review"]]})
    book.declare(graph, "w")
    assert published[-1] == {"plan": 0, "code": 1, "review": 2}
    assert book.request_started("w", "plan") is None
    book.request_finished("w", "plan")  # handed on when the next request shows where
    assert published[-1] == {"plan": 0, "code": 1, "review": 2}
    assert book.request_started("w", "code") is None
    assert published[-1] == {"plan": math.inf, "code": 0, "review": 1}
    assert "not ready" in book.request_started("w", "plan")  # soft: a reason, no raise
    book.delete("w")
    assert published[-1] == {}


def test_a_request_of_the_loop_target_takes_the_back_edge():
    published = []
    book = WorkflowBook(published.append)
    book.declare(graph_from_body({"edges": [["a", "b"], ["b", "a", 1]]}), "w")
    for agent in ("a", "b", "a", "b"):
        assert book.request_started("w", agent) is None, agent
        book.request_finished("w", agent)
    assert "not ready" in book.request_started("w", "a")  # the loop's one run is used


def test_kvflow_update_agent_data_and_timestep_data():
    published = []
    book = WorkflowBook(published.append)
    book.kvflow_update({"agent_data": {"a": 0, "b": 2}})
    assert published[-1] == {"a": 0, "b": 2}
    book.kvflow_update({"timestep_data": {"3": ["a"], "5": ["b", "c"]}, "timestep_cnt": 3})
    assert published[-1] == {"a": 0, "b": 2, "c": 2}  # replaces the earlier update


def test_idle_workflows_expire():
    now = [0.0]
    published = []
    book = WorkflowBook(published.append, idle_ttl_s=10, clock=lambda: now[0])
    book.declare(graph_from_body({"edges": [["a", "b"]]}), "w")
    now[0] = 11
    assert book.expire() == ["w"] and published[-1] == {}


# -- through the server ----------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    model_dir = make_tiny_chat_model(tmp_path_factory.mktemp("hints") / "tinychat")
    engine = make_engine(model_dir, kv_cache_tokens=8192, eviction_policy="kvflow")
    with ServerThread(engine) as s:
        yield s
    engine.check_integrity()


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=server.base_url + "/v1", api_key="unused", max_retries=0)


def _ask(client, server, agent: str, **extra):
    return client.chat.completions.create(
        model=str(server.engine.config.model),
        messages=[{"role": "system", "content": SYSTEM}, {"role": "user", "content": agent}],
        temperature=0,
        max_tokens=4,
        extra_body={"agent_id": agent, **extra},
    )


def _policy_ste(server) -> dict:
    server.post("/v1/completions", json={"model": str(server.engine.config.model), "prompt": [1]})
    return dict(server.engine.kv.tree.policy.agent_ste)  # applied at the engine's next step


def test_x_agentrt_reports_hint_outcomes(client, server):
    resp = _ask(client, server, "planner", workflow_id="w-x", priority=99999)
    x = resp.model_extra["x_agentrt"]
    assert x["hint_outcome"] == {
        "workflow_id": "accepted",
        "agent_id": "accepted",
        "priority": "clipped to 1000",
    }
    assert x["pinned_until"] is None and x["cached_tokens"] >= 0


def test_stream_finish_chunk_carries_x_agentrt(client, server):
    stream = client.chat.completions.create(
        model=str(server.engine.config.model),
        messages=[{"role": "user", "content": "hi"}],
        max_tokens=3,
        stream=True,
        extra_body={"session_id": "s1"},
    )
    chunks = list(stream)
    finals = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert len(finals) == 1
    assert finals[0].model_extra["x_agentrt"]["hint_outcome"] == {"session_id": "accepted"}


def test_declared_workflow_drives_the_kvflow_policy(client, server):
    body = {"workflow_id": "team", "graph": {"edges": [["plan", "code"], ["code", "review"]]}}
    created = server.post("/v1/workflows", json=body).json()
    assert created["steps_to_execution"] == {"plan": 0, "code": 1, "review": 2}
    assert _policy_ste(server) == {"plan": 0, "code": 1, "review": 2}

    first = _ask(client, server, "plan", workflow_id="team")
    assert "workflow_progress" not in first.model_extra["x_agentrt"]["hint_outcome"]
    _ask(client, server, "code", workflow_id="team")
    state = server.get("/v1/workflows/team").json()
    assert state["steps_to_execution"] == {"plan": None, "code": 0, "review": 1}
    assert _policy_ste(server)["code"] == 0

    patched = httpx_patch(server, "/v1/workflows/team", {"finished": ["code"]})
    assert patched["steps_to_execution"]["review"] == 0

    metrics = server.get("/metrics").text
    assert 'agentrt:request_hints_total{field="workflow_id"' in metrics
    assert "agentrt:workflows_declared" in metrics

    assert server.delete("/v1/workflows/team").json()["deleted"] is True
    assert server.get("/v1/workflows/team").status_code == 404
    assert _policy_ste(server) == {}


def test_bad_workflow_bodies_are_4xx(server):
    assert server.post("/v1/workflows", json={"graph": {"edges": [["a", "a"]]}}).status_code == 400
    assert server.post("/v1/workflows", json={"nograph": 1}).status_code == 400
    server.post("/v1/workflows", json={"workflow_id": "c", "graph": {"edges": [["a", "b"]]}})
    conflict = httpx_patch(server, "/v1/workflows/c", {"finished": ["b"]}, status=409)
    assert conflict["error"]["code"] == "workflow_conflict"
    assert server.post("/v1/update", json={"agent_data": {"a": -1}}).status_code == 400
    server.delete("/v1/workflows/c")


def test_kvflow_update_route_reaches_the_policy(server):
    resp = server.post("/v1/update", json={"agent_data": {"k1": 0, "k2": 3}, "workflow_id": "kv"})
    assert resp.json() == {"status": "ok", "agents": 2}
    assert _policy_ste(server) == {"k1": 0, "k2": 3}
    server.post("/v1/update", json={"agent_data": {}, "workflow_id": "kv"})


def test_hints_never_change_tokens(client, server):
    plain = _ask(client, server, "solo").choices[0].message.content
    hinted = _ask(client, server, "solo", workflow_id="w-t", priority=-3, step_id="s")
    assert hinted.choices[0].message.content == plain


def httpx_patch(server, path: str, body: dict, status: int = 200) -> dict:
    resp = httpx.patch(server.base_url + path, json=body, timeout=30)
    assert resp.status_code == status, resp.text
    return resp.json()
