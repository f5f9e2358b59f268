"""Chat rendering: tools in the system turn for templates without tools, passed through
(with arguments as objects) for templates that take them."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agentrt.engine import loader
from agentrt.serve.chat_template import ChatRenderer, common_prefix_len
from agentrt.serve.errors import APIError
from agentrt.serve.protocol import ChatMessage, Tool

NATIVE = (
    "{% if tools %}<tools>{% for t in tools %}{{ t.function.name }};{% endfor %}</tools>"
    "{% endif %}{% for m in messages %}<|im_start|>{{ m.role }}\n{% if m.tool_calls %}"
    "{% for c in m.tool_calls %}CALL {{ c.function.name }} {{ c.function.arguments | tojson }}"
    "{% endfor %}{% else %}{{ m.content }}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
TOOL = Tool.model_validate(
    {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}
)
MESSAGES = [
    ChatMessage(role="user", content=[{"type": "text", "text": "Weather in Rome?"}]),
    ChatMessage.model_validate(
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Rome"}'},
                }
            ],
        }
    ),
    ChatMessage(role="tool", tool_call_id="c1", content="sunny"),
]


@pytest.fixture(scope="module")
def tokenizer():
    return loader.load_tokenizer(loader.resolve_model_dir(None))


def _text(renderer: ChatRenderer, tools) -> str:
    return renderer.tokenizer.decode(renderer.render(MESSAGES, tools))


def test_template_without_tools_gets_them_in_the_system_turn(tokenizer):
    renderer = ChatRenderer(tokenizer)
    assert not renderer.native_tools
    text = _text(renderer, [TOOL])
    assert text.startswith("<|im_start|>system\nYou are a function calling AI model")
    assert '"name": "get_weather"' in text and "<tools>" in text
    assert '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Rome"}}' in text
    assert "<|im_start|>tool\nsunny<|im_end|>" in text
    assert text.endswith("<|im_start|>assistant\n")


def test_template_with_tools_gets_them_as_they_came(tokenizer):
    native = type(tokenizer).from_pretrained(str(loader.resolve_model_dir(None)))
    native.chat_template = NATIVE
    renderer = ChatRenderer(native)
    assert renderer.native_tools
    text = _text(renderer, [TOOL])
    assert text.startswith("<tools>get_weather;</tools>")
    assert 'CALL get_weather {"city": "Rome"}' in text  # an object, not a JSON string


def test_non_text_content_is_a_400(tokenizer):
    image = ChatMessage(role="user", content=[{"type": "image_url", "image_url": {"url": "x"}}])
    with pytest.raises(APIError) as info:
        ChatRenderer(tokenizer).render([image], None)
    assert info.value.status == 400


def test_render_gives_the_ids_apply_chat_template_gives(tokenizer):
    """The direct backend encode is the same tokenization as transformers' own
    `apply_chat_template(tokenize=True)`, with and without tools, on odd text."""
    renderer = ChatRenderer(tokenizer)
    assert renderer.backend is not None  # the default model's tokenizer is fast
    odd = ChatMessage(role="user", content="  <|im_end|> héllo\n\n\tworld 123 🙂 <tool_call>")
    for messages, tools in [(MESSAGES, [TOOL]), ([odd], None), (MESSAGES[:1], None)]:
        plain = [renderer._flat(m) for m in messages]
        if tools:
            plain = renderer._with_tools_system(plain, tools)
        expected = tokenizer.apply_chat_template(
            plain, add_generation_prompt=True, tokenize=True, return_dict=False
        )
        assert renderer.render(messages, tools) == list(expected)


@given(
    st.lists(st.integers(0, 3), max_size=40),
    st.lists(st.integers(0, 3), max_size=40),
)
def test_common_prefix_len_matches_the_plain_loop(a, b):
    plain = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        plain += 1
    assert common_prefix_len(a, b) == plain
