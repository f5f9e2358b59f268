"""Least recently used: evict the leaf whose last access is oldest."""

from __future__ import annotations

from typing import TYPE_CHECKING

from agentrt.kvmanager.policy import EvictionPolicy, register_policy

if TYPE_CHECKING:
    from agentrt.kvmanager.radix_node import RadixNode


@register_policy("lru")
class LRUPolicy(EvictionPolicy):
    key_is_last_access = True

    def key(self, node: RadixNode) -> int:
        return node.last_access
