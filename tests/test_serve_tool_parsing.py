"""Tool calls out of model text: the Hermes blocks of `auto` and cut-short forced lists."""

from __future__ import annotations

import json

from agentrt.serve.protocol import FunctionDef, Tool
from agentrt.serve.tool_calls import ToolMode, held_back, parse_auto, parse_constrained

KNOWN = {"get_weather", "get_time"}


def test_auto_parses_blocks_and_keeps_the_text_around_them():
    text = 'Let me check.\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Rome"}}\n'
    text += '</tool_call>\n<tool_call>[{"name": "get_time", "arguments": {}}]</tool_call>'
    content, calls = parse_auto(text, KNOWN)
    assert content == "Let me check."
    assert [c.function.name for c in calls] == ["get_weather", "get_time"]
    assert json.loads(calls[0].function.arguments) == {"city": "Rome"}
    assert len({c.id for c in calls}) == 2


def test_auto_leaves_unknown_or_broken_blocks_as_content():
    for text in (
        '<tool_call>{"name": "rm_rf", "arguments": {}}</tool_call>',
        "<tool_call>{not json</tool_call>",
        "no calls here",
    ):
        content, calls = parse_auto(text, KNOWN)
        assert calls == [] and content == text


def test_auto_takes_a_block_cut_off_at_eos():
    content, calls = parse_auto('<tool_call>{"name": "get_time", "arguments": {}}', KNOWN)
    assert content is None and calls[0].function.name == "get_time"


def test_forced_list_cut_short_keeps_its_complete_calls():
    mode = ToolMode("required", (Tool(function=FunctionDef(name="get_time")),))
    text = '[{"name": "get_time", "arguments": {}}, {"name": "get_time", "argu'
    calls = parse_constrained(mode, text)
    assert [c.function.name for c in calls] == ["get_time"]
    assert parse_constrained(mode, '[{"name": "get_ti') is None


def test_held_back_covers_a_partial_open_tag():
    assert held_back("hello <tool") == len("<tool")
    assert held_back("hello <") == 1
    assert held_back("hello") == 0


def _out(text: str, finished: bool = False, reason: str | None = None):
    from agentrt.engine.outputs import RequestOutput

    return RequestOutput("r", [1], [], [], text, finished, reason)


def test_auto_stream_holds_back_a_tag_and_sends_the_call_at_the_end():
    from agentrt.serve.chat import _ChoiceStream

    tools = (Tool(function=FunctionDef(name="get_time")),)
    stream = _ChoiceStream(ToolMode("auto", tools))
    pieces = [stream.delta(_out("Sure <")), stream.delta(_out("Sure <tool")), {}]
    pieces[2] = stream.delta(_out('Sure <tool_call>{"name": "get_time"'))
    assert pieces[0] == {"content": "Sure "} and pieces[1] == {} and pieces[2] == {}
    text = 'Sure <tool_call>{"name": "get_time", "arguments": {}}</tool_call>'
    _, calls = parse_auto(text, {"get_time"})
    final = stream.final_delta(_out(text, True, "stop"), calls)
    assert "content" not in final  # "Sure" went out already
    assert final["tool_calls"][0]["function"]["name"] == "get_time"


def test_auto_stream_sends_held_text_that_was_no_tag():
    from agentrt.serve.chat import _ChoiceStream

    stream = _ChoiceStream(ToolMode("auto", (Tool(function=FunctionDef(name="f")),)))
    assert stream.delta(_out("a <")) == {"content": "a "}
    assert stream.delta(_out("a < b")) == {"content": "< b"}
    assert stream.final_delta(_out("a < b!", True, "stop"), []) == {"content": "!"}
