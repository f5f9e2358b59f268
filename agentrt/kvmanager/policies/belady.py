"""Belady's offline optimum, for measuring how close the online policies get.

What it knows: the *future* is the sequence of upcoming LLM calls, as agent ids, given
by the benchmark with ``set_future([...])``. When the manager reports an admitted call
(``on_request``) it consumes the earliest not yet consumed occurrence of that agent, so
concurrent instances that arrive slightly out of the predicted order do not skip the
calls of other agents in between. A node's next use is the earliest unconsumed call of an
agent whose fixed prefix passes through the node (``node.agents``); a node no upcoming
call's agent holds is never used again.

Key (lowest evicts first): never used again (dynamic suffixes and finished agents) first,
then the farthest next use, then least recently used. It does not know the dynamic
suffixes of future calls, so suffix reuse (e.g. a preempted sequence) is invisible to it.

Host tier and prefetch are on, with the same prefetcher and STE hints as ``kvflow``, so
comparing the two isolates the eviction decision: a prefetch may evict only nodes whose
next use is strictly farther than the prefetched prefix's.
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
