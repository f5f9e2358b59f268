"""Tool calls: the grammar that forces them, and parsing them out of the model's text.

`required` and a named function constrain decoding by a JSON schema: for a named function
the output is its arguments object; for `required` it is a list of `{"name", "arguments"}`
objects (one at most without `parallel_tool_calls`), each a declared function with its
parameters. With `auto` the model writes freely and `<tool_call>{...}</tool_call>` blocks
(the Hermes format of chat_template.py) are parsed out of its text. With `none` the tools
are rendered into the prompt but nothing is constrained or parsed.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass

from agentrt.engine.structured_params import StructuredOutputParams
from agentrt.serve.errors import APIError
from agentrt.serve.protocol import (
    ChatCompletionRequest,
    FunctionCall,
    NamedToolChoice,
    Tool,
    ToolCall,
)

OPEN, CLOSE = "<tool_call>", "</tool_call>"


@dataclass(frozen=True)
class ToolMode:
    """How one request treats tools: `mode` is none, auto, required or named."""

    mode: str
    tools: tuple[Tool, ...] = ()
    name: str | None = None

    @property
    def constrained(self) -> bool:
        return self.mode in ("required", "named")


def tool_mode(req: ChatCompletionRequest) -> ToolMode:
    tools = tuple(req.tools or ())
    choice = req.tool_choice
    if choice is None:
        choice = "auto" if tools else "none"
    if isinstance(choice, NamedToolChoice):
        names = {t.function.name for t in tools}
        if choice.function.name not in names:
            raise APIError(
                400,
                f"tool_choice names function {choice.function.name!r}, which is not in tools",
                param="tool_choice",
            )
        return ToolMode("named", tools, choice.function.name)
    if choice != "none" and not tools:
        raise APIError(400, f"tool_choice {choice!r} needs tools", param="tool_choice")
    # `none` keeps the tools in the prompt, as OpenAI and vLLM (by default) do: the model
    # still sees them, and an agent's last answer keeps its conversation's cached prefix
    return ToolMode(choice, tools)


def _parameters(tool: Tool) -> dict:
    return tool.function.parameters or {"type": "object", "properties": {}}


def tool_grammar(mode: ToolMode, parallel: bool) -> StructuredOutputParams:
    """The JSON schema a constrained tool choice decodes by."""
    if mode.mode == "named":
        tool = next(t for t in mode.tools if t.function.name == mode.name)
        schema = _parameters(tool)
    else:
        one_of = [
            {
                "type": "object",
                "properties": {
                    "name": {"const": t.function.name},
                    "arguments": _parameters(t),
                },
                "required": ["name", "arguments"],
            }
            for t in mode.tools
        ]
        schema = {"type": "array", "items": {"anyOf": one_of}, "minItems": 1}
        if not parallel:
            schema["maxItems"] = 1
    return StructuredOutputParams(kind="json_schema", spec=json.dumps(schema))


def new_call(name: str, arguments) -> ToolCall:
    args = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return ToolCall(
        id=f"call_{secrets.token_hex(12)}", function=FunctionCall(name=name, arguments=args)
    )


def parse_constrained(mode: ToolMode, text: str) -> list[ToolCall] | None:
    """The calls of a constrained output, or None when no call is complete. An output
    cut short by max_tokens keeps the calls of its list that were complete."""
    try:
        value = json.loads(text)
    except ValueError:
        value = _complete_items(text) if mode.mode == "required" else None
        if not value:
            return None
    if mode.mode == "named":
        return [new_call(mode.name or "", value)]
    return [new_call(item["name"], item["arguments"]) for item in value]


def _complete_items(text: str) -> list:
    """The complete items at the start of a JSON list cut short."""
    decoder = json.JSONDecoder()
    items: list = []
    pos = text.find("[") + 1
    while 0 < pos < len(text):
        try:
            item, pos = decoder.raw_decode(text, pos)
        except ValueError:
            break
        items.append(item)
        while pos < len(text) and text[pos] in ", \n":
            pos += 1
    return items


def parse_auto(text: str, known: set[str]) -> tuple[str | None, list[ToolCall]]:
    """Split free text into content and the tool calls in its `<tool_call>` blocks.
    A block that is not JSON naming a known function stays in the content."""
    start = text.find(OPEN)
    if start < 0:
        return text, []
    calls: list[ToolCall] = []
    rest = text[start:]
    leftover: list[str] = []
    while rest.startswith(OPEN):
        end = rest.find(CLOSE)
        body = rest[len(OPEN) : end if end >= 0 else len(rest)]
        found = _calls_in(body.strip(), known)
        if found is None:
            leftover.append(rest[: end + len(CLOSE)] if end >= 0 else rest)
        else:
            calls.extend(found)
        rest = rest[end + len(CLOSE) :].lstrip() if end >= 0 else ""
        nxt = rest.find(OPEN)
        if nxt > 0:
            leftover.append(rest[:nxt])
            rest = rest[nxt:]
    leftover.append(rest)
    content = (text[:start] + "".join(leftover)).strip()
    return (content or None), calls


def _calls_in(body: str, known: set[str]) -> list[ToolCall] | None:
    try:
        value = json.loads(body)
    except ValueError:
        return None
    items = value if isinstance(value, list) else [value]
    calls = []
    for item in items:
        if not (isinstance(item, dict) and item.get("name") in known):
            return None
        calls.append(new_call(item["name"], item.get("arguments", {})))
    return calls


def held_back(text: str) -> int:
    """How many trailing characters of streamed text could begin a `<tool_call>` tag
    (they wait for the next token before going out as content)."""
    for k in range(min(len(OPEN) - 1, len(text)), 0, -1):
        if OPEN.startswith(text[-k:]):
            return k
    return 0
