"""Incremental detokenization with stop-string detection."""

from __future__ import annotations


class Detokenizer:
    """Turns a growing list of output tokens into text and watches for stop strings.
    When a stop string appears, the text is cut before it and `stopped` is set."""

    def __init__(self, tokenizer, stop: tuple[str, ...] = ()) -> None:
        self.tokenizer = tokenizer
        self.stop = stop
        self.longest_stop = max((len(s) for s in stop), default=0)
        self.token_ids: list[int] = []
        self.text = ""
        self.stopped = False

    def append(self, token_id: int) -> str:
        self.token_ids.append(token_id)
        previous = len(self.text)
        text = self.tokenizer.decode(self.token_ids, skip_special_tokens=True)
        if self.stop:
            window = max(0, previous - self.longest_stop)
            hits = [i for i in (text.find(s, window) for s in self.stop) if i >= 0]
            if hits:
                text = text[: min(hits)]
                self.stopped = True
        self.text = text
        return text
