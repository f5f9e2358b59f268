"""Plain reference versions of the KV manager's fast paths, which the equivalence tests
(test_evict_fast_path, test_eviction_candidates, test_kv_cache_fast_path) hold them to:
`ScanTree` (candidates by a full scan, vs `EvictionCandidates`), `PlainEviction` /
`PlainEvictTree` (vs `DeviceEviction.evict`) and `PlainCacheManager` (`cache` inserting
from the root and matching the agent's prefix, vs `insert_below` and `touch_prefix`).
"""

from __future__ import annotations

import heapq
from typing import Any

from agentrt.kvmanager.candidates import is_device_candidate, is_host_candidate
from agentrt.kvmanager.eviction import DeviceEviction
from agentrt.kvmanager.interfaces import PagedSequence
from agentrt.kvmanager.manager import KVCacheManager
from agentrt.kvmanager.radix_node import RadixNode
from agentrt.kvmanager.radix_tree import RadixTree


class ScanTree(RadixTree):
    """Candidates from a full scan at each eviction (the eviction loops are the tree's)."""

    def device_candidates(self) -> list[RadixNode]:
        return [n for n in self.nodes() if is_device_candidate(n)]

    def host_candidates(self) -> list[RadixNode]:
        return [n for n in self.nodes() if is_host_candidate(n)]


class PlainEviction(DeviceEviction):
    """Candidates from a full scan, ``policy.key`` called for every node, every node
    through `DeviceEviction.evict_node` and its pages freed one node at a time."""

    def evict(self, num_pages: int, bound: Any = None) -> int:
        if num_pages <= 0:
            return 0
        tree = self.tree
        key = tree.policy.key
        heap = [(key(n), n.id, n) for n in tree.nodes() if is_device_candidate(n)]
        heapq.heapify(heap)
        freed = 0
        while heap and freed < num_pages:
            k, _, node = heapq.heappop(heap)
            if bound is not None and not k < bound:
                break
            parent = node.parent
            assert parent is not None
            pages: list[int] = []
            freed += self.evict_node(node, pages)
            tree.allocator.free(pages)
            if is_device_candidate(parent):
                heapq.heappush(heap, (key(parent), parent.id, parent))
        return freed


class PlainEvictTree(RadixTree):
    """A tree whose eviction is `PlainEviction`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.eviction = PlainEviction(self)


class PlainCacheManager(KVCacheManager):
    """`cache` inserts the whole token list from the root, finds the agent's prefix node
    by `match_prefix` and stores the agent's prefix tuple every time."""

    def cache(self, seq: PagedSequence) -> None:
        if not self.enable_prefix_cache:
            return
        full_pages = seq.num_computed_tokens // self.page_size
        if full_pages <= seq.num_tree_pages:
            return
        tokens = seq.token_ids[: full_pages * self.page_size]
        result = self.tree.insert(tokens, seq.block_table[:full_pages])
        kept = len(result.pages)
        duplicates = []
        for i in range(seq.num_tree_pages, kept):
            if result.pages[i] != seq.block_table[i]:
                duplicates.append(seq.block_table[i])
                seq.block_table[i] = result.pages[i]
        self.allocator.free(duplicates)
        self.tree.locks.lock(result.node)
        if seq.tree_node is not None:
            self.tree.locks.unlock(seq.tree_node)
        seq.tree_node = result.node
        seq.num_tree_pages = kept
        agent, prefix_len = seq.agent_id, seq.prefix_len
        if agent is None or not prefix_len:
            return
        n = min(prefix_len, kept * self.page_size) // self.page_size * self.page_size
        if n == 0:
            return
        node = self.tree.match_prefix(tokens[:n]).node
        while node is not self.tree.root and agent not in node.agents:
            node.agents.add(agent)
            node = node.parent
        if n == prefix_len // self.page_size * self.page_size:
            self.agent_prefixes[agent] = tuple(tokens[:n])
