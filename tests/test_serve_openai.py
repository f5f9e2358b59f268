"""The server against the real `openai` client, on the tiny chat model (greedy, few tokens)."""

from __future__ import annotations

import json

import anyio
import httpx
import openai
import pytest
from engine_helpers import make_engine
from serve_helpers import ServerThread, make_tiny_chat_model

from agentrt.engine.sampling_params import SamplingParams

SYSTEM = "You are the town clerk. " * 12  # long enough to fill several KV pages


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return make_tiny_chat_model(tmp_path_factory.mktemp("serve") / "tinychat")


@pytest.fixture(scope="module")
def server(model_dir):
    engine = make_engine(model_dir, kv_cache_tokens=8192)
    with ServerThread(engine) as s:
        yield s
    engine.check_integrity()


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=server.base_url + "/v1", api_key="unused", max_retries=0)


def _model(server) -> str:
    return str(server.engine.config.model)


def _chat(client, server, **kw):
    kw.setdefault("messages", [{"role": "user", "content": "Say hi."}])
    kw.setdefault("temperature", 0)
    return client.chat.completions.create(model=_model(server), **kw)


def test_models_lists_the_served_model(client, server):
    assert [m.id for m in client.models.list().data] == [_model(server)]
    assert client.models.retrieve(_model(server)).id == _model(server)
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("nope")


def test_chat_greedy_matches_the_engine_in_process(client, server):
    messages = [{"role": "user", "content": "Name a colour."}]
    resp = _chat(client, server, messages=messages, max_tokens=6, extra_body={"ignore_eos": True})
    tok = server.engine.tokenizer
    ids = tok.apply_chat_template(messages, add_generation_prompt=True, return_dict=False)
    alone = make_engine(server.engine.config.model, kv_cache_tokens=8192)
    alone.add_request(list(ids), SamplingParams(max_tokens=6, ignore_eos=True))
    while alone.has_unfinished_requests():
        for out in alone.step():
            expected = out
    assert resp.choices[0].message.content == expected.text
    assert resp.choices[0].finish_reason == "length"
    assert resp.usage.prompt_tokens == len(ids)
    assert resp.usage.completion_tokens == 6


def test_stream_concatenates_to_the_whole_answer_and_reports_usage(client, server):
    kw = {"max_tokens": 8, "extra_body": {"ignore_eos": True}}
    whole = _chat(client, server, **kw).choices[0].message.content
    chunks = list(_chat(client, server, stream=True, stream_options={"include_usage": True}, **kw))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole
    assert chunks[0].choices[0].delta.role == "assistant"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == "length" and set(finishes[:-1]) == {None}
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 8


def test_raw_stream_ends_with_done(server):
    body = {"model": _model(server), "messages": [{"role": "user", "content": "x"}]}
    body.update(max_tokens=3, stream=True)
    r = server.post("/v1/chat/completions", json=body)
    assert r.headers["content-type"].startswith("text/event-stream")
    events = [line for line in r.text.split("\n\n") if line]
    assert events[-1] == "data: [DONE]"
    assert all(e.startswith("data: ") for e in events)


def test_repeated_system_prompt_is_served_from_the_prefix_cache(client, server):
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "One?"}]
    first = _chat(client, server, messages=messages, max_tokens=2)
    messages[1]["content"] = "Two?"
    second = _chat(client, server, messages=messages, max_tokens=2)
    page = server.engine.kv.page_size
    cached = second.usage.prompt_tokens_details.cached_tokens
    assert cached >= first.usage.prompt_tokens // 2 // page * page > 0
    assert cached < second.usage.prompt_tokens


def test_n_choices_with_seed_are_reproducible(client, server):
    kw = {"n": 3, "temperature": 1.0, "seed": 7, "max_tokens": 6}
    a = _chat(client, server, **kw)
    b = _chat(client, server, **kw)
    assert [c.index for c in a.choices] == [0, 1, 2]
    texts = [c.message.content for c in a.choices]
    assert texts == [c.message.content for c in b.choices]
    assert len(set(texts)) > 1  # seed + i per choice
    assert 3 <= a.usage.completion_tokens <= 18  # counted over all choices


def test_logprobs_and_top_logprobs(client, server):
    resp = _chat(client, server, max_tokens=4, logprobs=True, top_logprobs=3)
    content = resp.choices[0].logprobs.content
    assert len(content) == resp.usage.completion_tokens
    for tok in content:
        assert len(tok.top_logprobs) == 3
        assert tok.logprob <= 0
        # greedy: the chosen token is the most likely one
        assert tok.logprob == pytest.approx(tok.top_logprobs[0].logprob)
        assert tok.top_logprobs[0].logprob >= tok.top_logprobs[1].logprob
    assert "".join(t.token for t in content) == resp.choices[0].message.content


def test_stop_string_and_max_completion_tokens(client, server):
    base = _chat(client, server, max_tokens=10, extra_body={"ignore_eos": True})
    text = base.choices[0].message.content
    stop = text[len(text) // 2 :][:3]
    resp = _chat(client, server, max_tokens=10, stop=[stop], extra_body={"ignore_eos": True})
    assert resp.choices[0].finish_reason == "stop"
    assert resp.choices[0].message.content == text[: text.find(stop)]
    short = _chat(client, server, max_completion_tokens=2, extra_body={"ignore_eos": True})
    assert short.usage.completion_tokens == 2


def test_min_tokens_holds_back_eos(client, server):
    resp = _chat(client, server, max_tokens=12, extra_body={"min_tokens": 12})
    assert resp.usage.completion_tokens == 12


def test_json_schema_output_parses_and_matches(client, server):
    schema = {
        "type": "object",
        "properties": {"unit": {"enum": ["celsius", "fahrenheit"]}, "ok": {"type": "boolean"}},
        "required": ["unit", "ok"],
    }
    fmt = {"type": "json_schema", "json_schema": {"name": "w", "schema": schema, "strict": True}}
    resp = _chat(client, server, max_tokens=40, response_format=fmt)
    value = json.loads(resp.choices[0].message.content)
    assert value["unit"] in ("celsius", "fahrenheit") and isinstance(value["ok"], bool)
    assert resp.choices[0].finish_reason == "stop"


WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"enum": ["Paris", "Rome"]}},
            "required": ["city"],
        },
    },
}
TIME = {
    "type": "function",
    "function": {
        "name": "get_time",
        "parameters": {"type": "object", "properties": {"utc": {"type": "boolean"}}},
    },
}


@pytest.mark.parametrize(
    "choice", ["required", {"type": "function", "function": {"name": "get_weather"}}]
)
def test_forced_tool_calls_always_parse(client, server, choice):
    resp = _chat(client, server, max_tokens=40, tools=[WEATHER, TIME], tool_choice=choice)
    msg = resp.choices[0].message
    assert resp.choices[0].finish_reason == "tool_calls"
    assert msg.tool_calls and all(c.id.startswith("call_") for c in msg.tool_calls)
    for call in msg.tool_calls:
        args = json.loads(call.function.arguments)
        assert call.function.name in ("get_weather", "get_time")
        if call.function.name == "get_weather":
            assert args["city"] in ("Paris", "Rome")
    if isinstance(choice, dict):
        assert [c.function.name for c in msg.tool_calls] == ["get_weather"]


def test_streamed_tool_call_deltas(client, server):
    kw = {"tools": [WEATHER], "tool_choice": "required", "parallel_tool_calls": False}
    whole = _chat(client, server, max_tokens=40, **kw).choices[0].message.tool_calls
    chunks = list(_chat(client, server, max_tokens=40, stream=True, **kw))
    deltas = [d for c in chunks for d in (c.choices[0].delta.tool_calls or [])]
    assert deltas and deltas[0].id and deltas[0].function.name == "get_weather"
    args = "".join(d.function.arguments or "" for d in deltas)
    assert json.loads(args) == json.loads(whole[0].function.arguments)
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_tool_results_render_into_the_next_turn(client, server):
    call = {"id": "call_1", "type": "function"}
    call["function"] = {"name": "get_weather", "arguments": '{"city": "Rome"}'}
    messages = [
        {"role": "user", "content": "Weather in Rome?"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
    ]
    resp = _chat(client, server, messages=messages, tools=[WEATHER], max_tokens=4)
    assert resp.choices[0].finish_reason in ("stop", "length", "tool_calls")


def test_completions_text_and_token_prompts(client, server):
    resp = client.completions.create(
        model=_model(server), prompt="Once upon", max_tokens=5, temperature=0
    )
    ids = server.engine.tokenize("Once upon")
    again = client.completions.create(model=_model(server), prompt=ids, max_tokens=5, temperature=0)
    assert resp.choices[0].text == again.choices[0].text
    assert resp.usage.prompt_tokens == len(ids)
    stream = client.completions.create(
        model=_model(server), prompt="Once upon", max_tokens=5, temperature=0, stream=True
    )
    assert "".join(c.choices[0].text for c in stream) == resp.choices[0].text


def test_async_client_streams_concurrently(server):
    async def main():
        client = openai.AsyncOpenAI(base_url=server.base_url + "/v1", api_key="x", max_retries=0)

        async def one(i):
            stream = await client.chat.completions.create(
                model=_model(server),
                messages=[{"role": "user", "content": f"Count to {i}"}],
                max_tokens=5,
                temperature=0,
                stream=True,
                extra_body={"ignore_eos": True},
            )
            return "".join([c.choices[0].delta.content or "" async for c in stream])

        texts = []
        async with anyio.create_task_group() as tg:
            for i in range(6):
                tg.start_soon(lambda i=i: _append(texts, one(i)))
        await client.close()
        return texts

    assert len(anyio.run(main)) == 6


async def _append(out, coro):
    out.append(await coro)


# -- errors ------------------------------------------------------------------------------


def _error(resp: httpx.Response) -> dict:
    body = resp.json()
    assert set(body["error"]) == {"message", "type", "param", "code"}
    return body["error"]


def test_unknown_model_is_404(client, server):
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="nope", messages=[{"role": "user", "content": "x"}])


def test_bad_json_is_400(server):
    r = server.post("/v1/chat/completions", content=b"{not json", headers={"content-type": "x"})
    assert r.status_code == 400 and _error(r)["code"] == "invalid_json"


def test_invalid_parameter_is_422_naming_it(server):
    body = {"model": _model(server), "messages": [{"role": "user", "content": "x"}]}
    r = server.post("/v1/chat/completions", json={**body, "temperature": 5})
    assert r.status_code == 422 and _error(r)["param"] == "temperature"
    r = server.post("/v1/chat/completions", json={**body, "messages": [{"role": "bot"}]})
    assert r.status_code == 422 and _error(r)["param"].startswith("messages.0.role")


def test_over_long_prompt_is_400(client, server):
    with pytest.raises(openai.BadRequestError) as info:
        _chat(client, server, messages=[{"role": "user", "content": "word " * 3000}])
    assert info.value.code == "context_length_exceeded"


def test_unknown_route_is_404_in_openai_shape(server):
    r = server.get("/v1/nothing")
    assert r.status_code == 404 and _error(r)["type"] == "not_found_error"


def test_bad_requests_leave_the_engine_clean(client, server):
    for _ in range(3):
        server.post("/v1/chat/completions", content=b"[1,")
    assert _chat(client, server, max_tokens=2).usage.completion_tokens >= 1
    assert not server.engine.has_unfinished_requests()
    server.engine.check_integrity()


def test_n_choices_stream_each_to_its_whole_answer(client, server):
    kw = {"n": 2, "temperature": 1.0, "seed": 3, "max_tokens": 5}
    whole = [c.message.content for c in _chat(client, server, **kw).choices]
    texts = ["", ""]
    finished = set()
    for chunk in _chat(client, server, stream=True, **kw):
        for choice in chunk.choices:
            texts[choice.index] += choice.delta.content or ""
            if choice.finish_reason:
                finished.add(choice.index)
    assert texts == whole and finished == {0, 1}


def test_schema_that_does_not_compile_is_400_and_others_go_on(client, server):
    fmt = {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "nonsense"}}}
    with pytest.raises(openai.BadRequestError):
        _chat(client, server, max_tokens=4, response_format=fmt)
    assert _chat(client, server, max_tokens=2).choices[0].finish_reason in ("stop", "length")


def test_tool_choice_none_renders_the_tools_but_parses_no_call(client, server):
    """As OpenAI and vLLM do: the tools stay in the prompt (so an agent's last answer,
    asked with `none`, keeps the prefix its earlier calls cached), no call is parsed."""
    with_tools = _chat(client, server, max_tokens=4, tools=[WEATHER], tool_choice="none")
    auto = _chat(client, server, max_tokens=4, tools=[WEATHER], tool_choice="auto")
    without = _chat(client, server, max_tokens=4)
    assert with_tools.usage.prompt_tokens == auto.usage.prompt_tokens
    assert with_tools.usage.prompt_tokens > without.usage.prompt_tokens
    assert with_tools.choices[0].message.tool_calls is None


def _events(r: httpx.Response) -> list[dict]:
    lines = [line for line in r.text.split("\n\n") if line]
    assert lines[-1] == "data: [DONE]"
    return [json.loads(line[len("data: ") :]) for line in lines[:-1]]


def test_every_body_has_openai_exact_shape(server):
    from agentrt.serve import protocol as p

    model = _model(server)
    assert p.ModelList.model_validate(server.get("/v1/models").json())
    chat = {"model": model, "messages": [{"role": "user", "content": "x"}], "max_tokens": 3}
    named = {"type": "function", "function": {"name": "get_weather"}}
    variants = [
        {},
        {"logprobs": True, "top_logprobs": 2, "n": 2},
        {"tools": [WEATHER], "tool_choice": named, "max_tokens": 20},
        {"tools": [WEATHER], "tool_choice": "required", "max_tokens": 20},
    ]
    for extra in variants:
        body = {**chat, **extra}
        p.ChatCompletion.model_validate(server.post("/v1/chat/completions", json=body).json())
        body.update(stream=True, stream_options={"include_usage": True})
        for chunk in _events(server.post("/v1/chat/completions", json=body)):
            p.ChatCompletionChunk.model_validate(chunk)
    completion = {"model": model, "prompt": "x", "max_tokens": 3, "logprobs": 2}
    p.Completion.model_validate(server.post("/v1/completions", json=completion).json())
    completion.update(stream=True, stream_options={"include_usage": True})
    for chunk in _events(server.post("/v1/completions", json=completion)):
        p.Completion.model_validate(chunk)


def test_named_tool_call_streams_its_arguments(client, server):
    kw = {"tools": [WEATHER], "max_tokens": 30}
    kw["tool_choice"] = {"type": "function", "function": {"name": "get_weather"}}
    whole = _chat(client, server, **kw).choices[0].message.tool_calls[0]
    chunks = list(_chat(client, server, stream=True, **kw))
    deltas = [d for c in chunks for d in (c.choices[0].delta.tool_calls or [])]
    assert len(deltas) > 1 and deltas[0].id and deltas[0].function.name == "get_weather"
    assert all(d.id is None and d.function.name is None for d in deltas[1:])
    args = "".join(d.function.arguments for d in deltas)
    assert args == whole.function.arguments
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
