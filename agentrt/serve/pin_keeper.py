"""`PinKeeper`: the server's tool-pause pins, from the decision to the engine and back.

A paused conversation's KV is pinned for the time-to-live its tools' pauses make worth
it (`learn.pin_value`: the reload it saves against the pool share it holds; with the
`pause` rule, for the expected pause), within the pin budget (`PinBook`). The reload is
priced by what requests here measured (`ReloadRate`: the time to first token per prompt
token missed on the device).

The engine may take a pin back (its pool needed the pages): those it reports
(`pins_shed`) leave the book too, so the book counts only pins the engine holds. A shed
also says that the pool cannot hold the budget now: the budget shrinks by the shed
pin's pages and grows back, up to `budget_pages`, by the pages of each pin that held
until its conversation came back.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable

from agentrt.kvmanager.pins import ShedPin
from agentrt.learn import PinBook, ToolPauses
from agentrt.learn.pin_value import ReloadRate, pin_ttl


def nothing_shed() -> list[ShedPin]:
    return []


class PinKeeper:
    def __init__(
        self,
        pin: Callable[[Hashable, list[int], float], None],
        unpin: Callable[[Hashable], None],
        budget_pages: int,
        block_size: int,
        pool_pages: int,
        pauses: ToolPauses,
        pin_rule: str = "cost",
        pins_shed: Callable[[], list[ShedPin]] = nothing_shed,
    ) -> None:
        """`pin(key, tokens, rank)`: pins shed highest rank first (the pin's end, on the
        clock of the `now` given to `pin`); `pins_shed`: the pins the engine took back
        since the last call (any thread)."""
        self.pin_engine, self.unpin_engine = pin, unpin
        self.book = PinBook(budget_pages)
        self.budget_pages = budget_pages
        self.block_size = block_size
        self.pool_pages = max(1, pool_pages)
        self.pauses = pauses
        self.pin_rule = pin_rule
        self.pins_shed = pins_shed
        self.reload = ReloadRate(default_s=1e-4)  # until the first request is measured
        self.shed_seen = 0  # pins the engine took back that the book still held

    def pin(self, key: Hashable, tool_names: list[str], tokens: list[int], now: float):
        """Pin `tokens` under `key` for the TTL of the pin rule; None (no TTL pays, or no
        room in the budget): no pin, and an earlier pin of `key` ends. Returns the Unix
        time the pin lasts until."""
        self.take_shed()
        pages = -(-len(tokens) // self.block_size)
        if self.pin_rule == "pause":
            ttl = self.pauses.expected_pause(tool_names)
        else:
            share = min(1.0, max(pages, 1) / self.pool_pages)
            self.release([key])  # (a pin it replaces does not count as pinned)
            pinned = min(1.0, self.book.pinned_pages / self.pool_pages)
            reload_s = self.reload.reload_s(len(tokens))
            ttl = pin_ttl(reload_s, share, self.pauses.samples(tool_names), pinned)
        until = now + ttl if ttl is not None else now
        result = self.book.pin(key, pages, until, now)
        for released in result.released:
            self.unpin_engine(released)
        if not result.pinned:
            return None
        self.pin_engine(key, tokens, until)
        return time.time() + (until - now)

    def measured(self, ttft_s: float, missed_tokens: int) -> None:
        """A request did not find `missed_tokens` prompt tokens on the device (it
        computed them, or loaded them from a host tier) and saw its first token after
        `ttft_s`: what a reload costs here (`ReloadRate`)."""
        self.reload.add(ttft_s, missed_tokens)

    def returned(self, key: Hashable) -> None:
        """`key`'s next request began: its pin leaves the budget (the engine ends it
        when it admits the request, which then holds the prefix itself)."""
        self.take_shed()
        pages = self.book.pages(key)
        if self.book.release(key):
            self._grow(pages)

    def _grow(self, pages: int) -> None:
        self.book.budget_pages = min(self.budget_pages, self.book.budget_pages + pages)

    def release(self, keys: list[Hashable]) -> None:
        for key in keys:
            if self.book.release(key):
                self.unpin_engine(key)

    def expire(self, now: float) -> None:
        for expired in self.book.expire(now):
            self.unpin_engine(expired)

    def take_shed(self) -> None:
        """Drop from the book the pins the engine took back (unless re-pinned since:
        the book's pin of a key ends at the rank the engine's was pinned with)."""
        for shed in self.pins_shed():
            if self.book.until(shed.key) == shed.rank:
                pages = self.book.pages(shed.key)
                self.book.release(shed.key)
                self.book.budget_pages = max(0, self.book.budget_pages - pages)
                self.shed_seen += 1
