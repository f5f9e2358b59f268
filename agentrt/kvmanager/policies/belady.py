"""Belady's offline optimum, for measuring how close the online policies get.

The *future* is the sequence of upcoming calls' agent ids (``set_future([...])``); each
admitted call (``on_request``) consumes the earliest unconsumed occurrence of its agent.
A node's next use is the earliest unconsumed call of an agent in ``node.agents``. Key
(lowest evicts first): never used again first, then the farthest next use, then least
recently used (future dynamic suffixes are unknown to it). Host tier, prefetcher and STE
hints as ``kvflow``, so comparing the two isolates the eviction decision.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable
from typing import TYPE_CHECKING

from agentrt.kvmanager.policy import EvictionPolicy, register_policy

if TYPE_CHECKING:
    from agentrt.kvmanager.radix_node import RadixNode


@register_policy("belady")
class BeladyPolicy(EvictionPolicy):
    uses_host_tier = True
    prefetch = True

    def __init__(self) -> None:
        self._positions: dict[str, deque[int]] = {}

    def set_future(self, calls: Iterable[str]) -> None:
        """The upcoming calls' agent ids, in order of arrival."""
        positions: dict[str, deque[int]] = {}
        for index, agent in enumerate(calls):
            positions.setdefault(agent, deque()).append(index)
        self._positions = positions

    def on_request(self, agent_id: str | None) -> None:
        queue = self._positions.get(agent_id) if agent_id is not None else None
        if queue:
            queue.popleft()

    def next_use(self, node: RadixNode) -> float:
        """Index in the future of the node's next use (inf: never)."""
        positions = self._positions
        return min(
            (q[0] for a in node.agents if (q := positions.get(a))),
            default=math.inf,
        )

    def key(self, node: RadixNode) -> tuple[float, int]:
        return (-self.next_use(node), node.last_access)

    def prefetch_bound(self, node: RadixNode) -> tuple[float, int]:
        return (-self.next_use(node), -1)
