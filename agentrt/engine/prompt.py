"""Prompts as fixed prefix + dynamic suffix, in token ids.

The prefix (an agent's system prompt) is tokenized once and reused verbatim, so the radix
cache can share its KV. With a chat template the prefix is the rendered system turn and
the suffix the user turn plus the assistant header; without one, text joined by a newline.
"""

from __future__ import annotations

from functools import lru_cache


class PromptBuilder:
    def __init__(self, tokenizer) -> None:
        if tokenizer is None:
            raise ValueError("building prompts from text needs a model with a tokenizer")
        self.tokenizer = tokenizer
        self.chat = getattr(tokenizer, "chat_template", None) is not None
        self.prefix_ids = lru_cache(maxsize=1024)(self._prefix_ids)

    def _render(self, messages: list[dict[str, str]], generation_prompt: bool) -> list[int]:
        return list(
            self.tokenizer.apply_chat_template(
                messages,
                add_generation_prompt=generation_prompt,
                tokenize=True,
                return_dict=False,
            )
        )

    def _prefix_ids(self, prefix: str) -> tuple[int, ...]:
        if not prefix:
            return ()
        if self.chat:
            return tuple(self._render([{"role": "system", "content": prefix}], False))
        return tuple(self.tokenizer.encode(prefix + "\n", add_special_tokens=False))

    def suffix_ids(self, text: str, has_prefix: bool) -> list[int]:
        if not self.chat:
            return self.tokenizer.encode(text, add_special_tokens=False)
        full = self._render([{"role": "user", "content": text}], True)
        if has_prefix:
            return full[self._default_system_len() :]
        return full

    @lru_cache(maxsize=1)  # noqa: B019 - one builder per engine, lives as long as it
    def _default_system_len(self) -> int:
        """Some templates insert a default system turn when none is given; with our own
        prefix present, drop it from the rendered user turn."""
        with_system = self._render(
            [{"role": "system", "content": "x"}, {"role": "user", "content": "y"}], True
        )
        alone = self._render([{"role": "user", "content": "y"}], True)
        system = self._render([{"role": "system", "content": "x"}], False)
        user_part = with_system[len(system) :]
        return len(alone) - len(user_part)

    def build(self, prefix: str, text: str) -> tuple[list[int], int]:
        """Token ids of prefix + text, and how many of them are the fixed prefix."""
        head = list(self.prefix_ids(prefix))
        return head + self.suffix_ids(text, bool(head)), len(head)
