"""The server on the default model (SmolLM2-135M-Instruct): a real answer with cached
prompt tokens and a forced tool call that parses, through the openai client (schemas and
the rest are covered on the tiny model)."""

from __future__ import annotations

import json

import openai
import pytest
from engine_helpers import make_engine
from serve_helpers import ServerThread

from agentrt.engine import loader
from agentrt.serve.settings import ServeSettings


@pytest.fixture(scope="module")
def client():
    engine = make_engine(loader.resolve_model_dir(None), page_size=16, kv_cache_tokens=8192)
    settings = ServeSettings(served_model_name="smollm2", grace_seconds=5)
    with ServerThread(engine, settings) as server:
        yield openai.OpenAI(base_url=server.base_url + "/v1", api_key="x", max_retries=0)
    engine.check_integrity()


def test_default_model_answers_and_reports_cached_prompt_tokens(client):
    messages = [
        {"role": "system", "content": "You are a concise geography tutor. " * 4},
        {"role": "user", "content": "What is the capital of France?"},
    ]
    first = client.chat.completions.create(
        model="smollm2", messages=messages, max_tokens=12, temperature=0
    )
    assert "Paris" in first.choices[0].message.content
    again = client.chat.completions.create(
        model="smollm2", messages=messages, max_tokens=2, temperature=0
    )
    assert again.usage.prompt_tokens_details.cached_tokens >= 32


def test_default_model_forced_tool_call_parses(client):
    tool = {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string", "maxLength": 8}},
                "required": ["city"],
            },
        },
    }
    resp = client.chat.completions.create(
        model="smollm2",
        messages=[{"role": "user", "content": "What's the weather in Paris?"}],
        tools=[tool],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        max_tokens=24,
        temperature=0,
    )
    call = resp.choices[0].message.tool_calls[0]
    assert call.function.name == "get_weather"
    assert isinstance(json.loads(call.function.arguments)["city"], str)
