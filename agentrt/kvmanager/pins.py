"""Pins: cached prefixes held on the device for a while (a conversation paused on a tool).

`pin(key, tokens, rank)` locks the longest device-resident cached prefix of `tokens`, so
eviction passes it by; `unpin(key)` lets it go. Pins give way: when an allocation cannot
be met otherwise, `shed()` releases the pin of the highest `rank` (the server ranks a pin
by when its conversation is expected back, so the one needed last goes first; among
equal ranks the newest) and the caller retries, so a pin never fails a request and
pinned pages are only ever the last to go. Each shed pin is reported as a `ShedPin`
(`drain_shed`, any thread), so that whoever keeps a budget of pins learns it is gone.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

from agentrt.kvmanager.radix_node import RadixNode
from agentrt.kvmanager.radix_tree import RadixTree

MAX_SHED_REPORTS = 10_000  # undrained reports beyond this drop the oldest


@dataclass(frozen=True)
class ShedPin:
    """A pin the pool took back: its key and the rank it was pinned with."""

    key: Hashable
    rank: float


class Pins:
    def __init__(self, tree: RadixTree) -> None:
        self.tree = tree
        # insertion order = age, oldest first; each pin's node and shedding rank
        self._held: dict[Hashable, tuple[RadixNode, float]] = {}
        self.shed_count = 0
        # (key, tokens or None to unpin, rank)
        self.requests: deque[tuple[Hashable, list[int] | None, float]] = deque()
        self._shed: deque[ShedPin] = deque(maxlen=MAX_SHED_REPORTS)

    def __len__(self) -> int:
        return len(self._held)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._held

    def pin(self, key: Hashable, tokens: Sequence[int], rank: float = 0.0) -> int:
        """Hold the cached device prefix of `tokens` (replacing `key`'s earlier pin), to
        be shed in order of `rank` (highest first); returns the tokens pinned (0: nothing
        of it is cached)."""
        self.unpin(key)
        found = self.tree.match_prefix(tokens)
        if not found.num_tokens:
            return 0
        self.tree.locks.lock(found.node)
        self._held[key] = (found.node, rank)
        return found.num_tokens

    def unpin(self, key: Hashable) -> bool:
        held = self._held.pop(key, None)
        if held is None:
            return False
        self.tree.locks.unlock(held[0])
        return True

    def shed(self) -> Hashable | None:
        """Release the pin of the highest rank, the newest among equals (for an
        allocation that needs its pages); its key, or None when nothing is pinned."""
        if not self._held:
            return None
        key = max(reversed(self._held), key=lambda k: self._held[k][1])  # first max wins
        self._shed.append(ShedPin(key, self._held[key][1]))
        self.unpin(key)
        self.shed_count += 1
        return key

    def drain_shed(self) -> list[ShedPin]:
        """The pins shed since the last call, oldest first. Any thread."""
        out = []
        while self._shed:
            out.append(self._shed.popleft())
        return out

    def request(self, key: Hashable, tokens: list[int] | None, rank: float = 0.0) -> None:
        """Pin ``tokens`` (None: unpin) under ``key`` with ``rank`` at the next
        `apply_requests`. Any thread."""
        self.requests.append((key, tokens, rank))

    def apply_requests(self, enabled: bool) -> None:
        """The requested pins and unpins, in order (pins only when ``enabled``: with a
        prefix cache)."""
        while self.requests:
            key, tokens, rank = self.requests.popleft()
            if tokens is None:
                self.unpin(key)
            elif enabled:
                self.pin(key, tokens, rank)

    def clear(self) -> None:
        for key in list(self._held):
            self.unpin(key)

    def nodes(self) -> list[RadixNode]:
        """The pinned nodes (each holds one lock on its path)."""
        return [node for node, _ in self._held.values()]
