"""KVFlow: evict by steps-to-execution (STE) of the agents whose fixed prefix a node holds.

Order (lowest key evicts first): nodes no agent's fixed prefix passes through (dynamic
suffixes) first, then nodes whose nearest agent is furthest from running (largest min
STE; agents absent from the hints count as infinitely far), then least recently used.
Host tier and prefetch are on; suffix nodes are not written back to host.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING

from agentrt.kvmanager.policy import EvictionPolicy, register_policy

if TYPE_CHECKING:
    from agentrt.kvmanager.radix_node import RadixNode


@register_policy("kvflow")
class KVFlowPolicy(EvictionPolicy):
    uses_host_tier = True
    prefetch = True
    reads_hints = True

    def __init__(self) -> None:
        self.agent_ste: Mapping[str, float] = {}

    def update_hints(self, agent_ste: Mapping[str, float]) -> None:
        self.agent_ste = dict(agent_ste)

    def node_ste(self, node: RadixNode) -> float:
        """Min STE over the node's agents (inf when none is scheduled)."""
        ste = self.agent_ste
        return min((ste.get(a, math.inf) for a in node.agents), default=math.inf)

    def key(self, node: RadixNode) -> tuple[int, float, int]:
        if not node.agents:
            return (0, 0.0, node.last_access)
        return (1, -self.node_ste(node), node.last_access)

    def prefetch_bound(self, node: RadixNode) -> tuple[int, float, int]:
        # strictly farther agents or suffixes only: never trade equally-near prefixes
        return (1, -self.node_ste(node), -1)

    def wants_host_copy(self, node: RadixNode) -> bool:
        return bool(node.agents)
