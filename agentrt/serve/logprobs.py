"""The engine's TokenLogprob entries in OpenAI's two logprobs shapes."""

from __future__ import annotations

from functools import lru_cache

from agentrt.engine.logprobs import TokenLogprob


class LogprobFormatter:
    def __init__(self, tokenizer) -> None:
        self.token_text = lru_cache(maxsize=65536)(self._decode)
        self.tokenizer = tokenizer

    def _decode(self, token_id: int) -> str:
        return self.tokenizer.decode([token_id])

    def _entry(self, token_id: int, logprob: float) -> dict:
        text = self.token_text(token_id)
        return {"token": text, "logprob": logprob, "bytes": list(text.encode())}

    def chat(self, entries: list[TokenLogprob]) -> dict:
        """`choices[].logprobs` of a chat completion (or chunk)."""
        content = []
        for e in entries:
            item = self._entry(e.token_id, e.logprob)
            item["top_logprobs"] = [self._entry(t, lp) for t, lp in e.top]
            content.append(item)
        return {"content": content}

    def completion(self, entries: list[TokenLogprob], offset: int) -> dict:
        """`choices[].logprobs` of a legacy completion; `offset`: text before these."""
        tokens, offsets = [], []
        for e in entries:
            offsets.append(offset)
            text = self.token_text(e.token_id)
            tokens.append(text)
            offset += len(text)
        return {
            "tokens": tokens,
            "token_logprobs": [e.logprob for e in entries],
            "top_logprobs": [{self.token_text(t): lp for t, lp in e.top} for e in entries],
            "text_offset": offsets,
        }
