"""Belady's offline optimum, for measuring how close the online policies get.

What it knows: the *future* is the exact sequence of upcoming LLM calls, as agent ids,
given by the benchmark with ``set_future([...])``. A node's next use is the position of
the first upcoming call whose agent's fixed prefix passes through the node (``node.agents``);
a node no upcoming call's agent holds is never used again. The cursor moves past a call
when the manager reports its admission (``on_request``) or on ``advance()``.

Key (lowest evicts first): never used again (dynamic suffixes and finished agents) first,
then the farthest next use, then least recently used. It does not know the dynamic
suffixes of future calls, so suffix reuse (e.g. a preempted sequence) is invisible to it.
Host tier on, no prefetch (load-back is reactive, like ``hicache``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TYPE_CHECKING

from agentrt.kvmanager.policy import EvictionPolicy, register_policy

if TYPE_CHECKING:
    from agentrt.kvmanager.radix_node import RadixNode


@register_policy("belady")
class BeladyPolicy(EvictionPolicy):
    uses_host_tier = True

    def __init__(self) -> None:
        self.future: list[str] = []
        self.cursor = 0
        self._next: dict[str, int] = {}

    def set_future(self, calls: Iterable[str]) -> None:
        """The upcoming calls' agent ids, in order of arrival."""
        self.future = list(calls)
        self.cursor = 0
        self._reindex()

    def advance(self, n: int = 1) -> None:
        self.cursor = min(len(self.future), self.cursor + n)
        self._reindex()

    def on_request(self, agent_id: str | None) -> None:
        if agent_id is None:
            return
        try:
            pos = self.future.index(agent_id, self.cursor)
        except ValueError:
            return
        self.cursor = pos + 1
        self._reindex()

    def next_use(self, node: RadixNode) -> float:
        return min((self._next.get(a, math.inf) for a in node.agents), default=math.inf)

    def key(self, node: RadixNode) -> tuple[float, int]:
        return (-self.next_use(node), node.last_access)

    def _reindex(self) -> None:
        nxt: dict[str, int] = {}
        for i in range(len(self.future) - 1, self.cursor - 1, -1):
            nxt[self.future[i]] = i
        self._next = nxt
