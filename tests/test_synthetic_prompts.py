"""`SyntheticPrompts.build`: cached word ids give exactly the ids computed from scratch,
and the returned list is the caller's own."""

from __future__ import annotations

from agentrt.simulation import synthetic_prompts as sp


def from_scratch(prefix: str, text: str, template_tokens: int = 8) -> tuple[list[int], int]:
    head = [t for w in prefix.split() for t in sp._word_ids(w)]
    body = [t for w in text.split() for t in sp._word_ids(w)]
    tail = [sp.FIRST_ID + 1 + k for k in range(template_tokens)]
    return head + body + tail, len(head)


def test_cached_ids_equal_ids_from_scratch():
    prompts = sp.SyntheticPrompts()
    persona = "You are Ada Lovelace, a mathematician. Curious, precise."
    texts = ["What do you do now?", "It is day 1 07:00.", "What do you do now?"] * 3
    texts += ["Hello Bob, nice to see you at the cafe.", "a-very-long-word-indeed x"]
    for text in texts:
        ids, n = prompts.build(persona, text)
        assert (ids, n) == from_scratch(persona, text)
        ids.append(-1)  # the caller's list: mutating it changes no later result
