"""Which requests the arrival wait waits after: a forced tool call (the client runs the
tool before its next request) and a declared last step expect no follow-up."""

from __future__ import annotations

import anyio
import pytest
from engine_helpers import make_engine
from serve_helpers import ServerThread, make_tiny_chat_model

from agentrt.serve.hints import RequestHints
from agentrt.serve.protocol import ChatCompletionRequest, CompletionRequest
from agentrt.serve.settings import ServeSettings

TOOL = {
    "type": "function",
    "function": {"name": "search", "parameters": {"type": "object", "properties": {}}},
}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    model = make_tiny_chat_model(tmp_path_factory.mktemp("follow") / "tinychat")
    engine = make_engine(model, kv_cache_tokens=2048)
    with ServerThread(engine, ServeSettings(served_model_name="m")) as server:
        yield server


@pytest.mark.parametrize(
    ("extra", "last_step", "follow_up"),
    [
        ({}, False, True),
        ({"tools": [TOOL]}, False, True),  # auto: the model may answer in prose
        ({"tools": [TOOL], "tool_choice": "required"}, False, False),
        (
            {"tools": [TOOL], "tool_choice": {"type": "function", "function": {"name": "search"}}},
            False,
            False,
        ),
        ({}, True, False),
    ],
)
def test_chat_jobs_expect_a_follow_up_unless_a_tool_call_or_the_last_step(
    server, extra, last_step, follow_up
):
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "n": 2, **extra}
    request = ChatCompletionRequest.model_validate(body)
    hints = RequestHints(is_last_step=last_step)
    plan = anyio.run(server.app.state.chat.plan, request, hints)
    assert [job.follow_up for job in plan.jobs] == [follow_up, follow_up]


@pytest.mark.parametrize("last_step", [False, True])
def test_completion_jobs_expect_a_follow_up_unless_the_last_step(server, last_step):
    request = CompletionRequest.model_validate({"model": "m", "prompt": [5, 6, 7]})
    plan = anyio.run(
        server.app.state.completions.plan, request, RequestHints(is_last_step=last_step)
    )
    assert [job.follow_up for job in plan.jobs] == [not last_step]
