"""Chat messages (and tool definitions) to prompt token ids, by the model's chat template.

A template that knows tools (it reads a `tools` variable) gets the messages and tools as
they came. For one that does not (SmolLM2's), tools are described in the system turn in
the Hermes format most small instruct models were tuned on, the assistant's earlier tool
calls become `<tool_call>` blocks in its text and tool results keep the `tool` role.
"""

from __future__ import annotations

import json

from agentrt.serve.errors import APIError
from agentrt.serve.protocol import ChatMessage, Tool

FIXED_CACHE_SIZE = 4096  # distinct system turns + tool sets remembered

TOOLS_PREAMBLE = (
    "You are a function calling AI model. You are provided with function signatures "
    "within <tools></tools> XML tags. You may call one or more functions to assist with "
    "the user query. For each function call return a json object with the function name "
    "and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n"
    '{"name": <function-name>, "arguments": <args-dict>}\n</tool_call>\n'
)


def message_text(message: ChatMessage) -> str:
    """The message's text; content parts must all be text."""
    content = message.content
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    texts = []
    for i, part in enumerate(content):
        if part.get("type") != "text" or not isinstance(part.get("text"), str):
            raise APIError(
                400,
                f"content part of type {part.get('type')!r} is not supported (text only)",
                param=f"messages.content.{i}",
            )
        texts.append(part["text"])
    return "".join(texts)


def _args(arguments: str):
    """Arguments as templates expect them: the JSON object, or the text if it is not JSON."""
    try:
        return json.loads(arguments) if arguments else {}
    except ValueError:
        return arguments


def tool_call_block(name: str, arguments: str) -> str:
    args = _args(arguments)
    return "<tool_call>\n" + json.dumps({"name": name, "arguments": args}) + "\n</tool_call>"


class ChatRenderer:
    def __init__(self, tokenizer) -> None:
        if tokenizer is None or tokenizer.chat_template is None:
            raise ValueError("chat completions need a model whose tokenizer has a chat template")
        self.tokenizer = tokenizer
        self.native_tools = "tools" in tokenizer.chat_template
        self.backend = tokenizer.backend_tokenizer if tokenizer.is_fast else None
        self._fixed: dict[tuple, list[int]] = {}  # system turn + tools -> probe render

    def render(self, messages: list[ChatMessage], tools: list[Tool] | None) -> list[int]:
        """Prompt token ids ending in the assistant's generation header."""
        return self.encode(self._text(messages, tools))

    def fixed_prefix_len(
        self, messages: list[ChatMessage], tools: list[Tool] | None, ids: list[int]
    ) -> int:
        """How many leading tokens of `ids` (this conversation's render) are its fixed
        prefix: what every conversation with the same system turn and tools starts with,
        up to where the first other message's text begins. Found by rendering the system
        messages with a placeholder in place of the rest (cached per system turn and
        tools), then the common prefix with `ids`."""
        head = []
        for m in messages:
            if m.role not in ("system", "developer"):
                break
            head.append(m)
        key = (
            tuple((m.role, message_text(m)) for m in head),
            tuple(t.model_dump_json() for t in tools or ()),
        )
        probe = self._fixed.get(key)
        if probe is None:
            if len(self._fixed) >= FIXED_CACHE_SIZE:
                self._fixed.pop(next(iter(self._fixed)))
            placeholder = ChatMessage(role="user", content="\x00")
            probe = self._fixed[key] = self.render([*head, placeholder], tools)
        return common_prefix_len(probe, ids)

    def _text(self, messages: list[ChatMessage], tools: list[Tool] | None) -> str:
        if self.native_tools:
            plain = [self._native(m) for m in messages]
            tool_defs = [t.model_dump(exclude_none=True) for t in tools] if tools else None
        else:
            plain = [self._flat(m) for m in messages]
            if tools:
                plain = self._with_tools_system(plain, tools)
            tool_defs = None
        try:
            text = self.tokenizer.apply_chat_template(
                plain, tools=tool_defs, add_generation_prompt=True, tokenize=False
            )
        except Exception as exc:  # jinja raises its own errors (roles the template refuses)
            raise APIError(400, f"the chat template rejected the messages: {exc}") from None
        return text

    def encode(self, text: str) -> list[int]:
        """Token ids of rendered template text, as `apply_chat_template(tokenize=True)`
        gives them (no special tokens added). A fast tokenizer's Rust backend is called
        directly: the Python wrapper costs several times the encoding itself."""
        if self.backend is not None:
            return self.backend.encode(text, add_special_tokens=False).ids
        return self.tokenizer.encode(text, add_special_tokens=False)

    def _native(self, m: ChatMessage) -> dict:
        out: dict = {"role": m.role, "content": message_text(m)}
        if m.tool_calls:
            out["tool_calls"] = [
                {
                    "id": c.id,
                    "type": "function",
                    "function": {"name": c.function.name, "arguments": _args(c.function.arguments)},
                }
                for c in m.tool_calls
            ]
        if m.tool_call_id is not None:
            out["tool_call_id"] = m.tool_call_id
        if m.name is not None:
            out["name"] = m.name
        return out

    def _flat(self, m: ChatMessage) -> dict:
        text = message_text(m)
        role = "system" if m.role == "developer" else m.role
        if m.tool_calls:
            blocks = [tool_call_block(c.function.name, c.function.arguments) for c in m.tool_calls]
            text = "\n".join([text, *blocks]) if text else "\n".join(blocks)
        return {"role": role, "content": text}

    def _with_tools_system(self, messages: list[dict], tools: list[Tool]) -> list[dict]:
        specs = "\n".join(json.dumps(t.model_dump(exclude_none=True)) for t in tools)
        block = f"{TOOLS_PREAMBLE}<tools>\n{specs}\n</tools>"
        if messages and messages[0]["role"] == "system":
            first = {"role": "system", "content": messages[0]["content"] + "\n\n" + block}
            return [first, *messages[1:]]
        return [{"role": "system", "content": block}, *messages]


def common_prefix_len(a: list[int], b: list[int]) -> int:
    """The length of the longest common prefix, by bisection over slice comparisons
    (C loops; a Python loop over an 8k-token prefix costs ~0.3 ms a request)."""
    lo, hi = 0, min(len(a), len(b))
    if a[:hi] == b[:hi]:
        return hi
    while hi - lo > 1:  # a[:lo] == b[:lo] and a[:hi] != b[:hi]
        mid = (lo + hi) // 2
        if a[:mid] == b[:mid]:
            lo = mid
        else:
            hi = mid
    return lo
