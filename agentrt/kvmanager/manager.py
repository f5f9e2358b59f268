"""The facade the batcher uses: prefix matching, page allocation, caching, release.

A sequence's `block_table` starts with `num_tree_pages` pages borrowed from the radix
tree (kept alive by locking `tree_node`); the rest are its own. Caching a sequence hands
its full, computed pages to the tree; releasing frees what is still its own.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from agentrt.kvmanager.page_allocator import PageAllocator
from agentrt.kvmanager.policy import EvictionPolicy
from agentrt.kvmanager.radix_tree import RadixTree


class PagedSequence(Protocol):
    """What the manager needs from a sequence (the engine's `Sequence` fits)."""

    token_ids: list[int]
    num_computed_tokens: int
    num_cached_tokens: int
    block_table: list[int]
    num_tree_pages: int
    tree_node: object


class KVCacheManager:
    def __init__(
        self,
        num_pages: int,
        page_size: int,
        policy: str | EvictionPolicy = "lru",
        enable_prefix_cache: bool = True,
    ) -> None:
        self.page_size = page_size
        self.allocator = PageAllocator(num_pages)
        self.tree = RadixTree(page_size, self.allocator, policy)
        self.enable_prefix_cache = enable_prefix_cache

    @property
    def num_pages(self) -> int:
        return self.allocator.num_pages

    def pages_for(self, num_tokens: int) -> int:
        return -(-num_tokens // self.page_size)

    def match(self, seq: PagedSequence) -> None:
        """Give a waiting sequence the longest cached prefix of its tokens, locked.
        At least one token is always left to compute, so the model yields logits."""
        assert not seq.block_table and seq.tree_node is None, "sequence already holds KV"
        seq.num_computed_tokens = seq.num_cached_tokens = 0
        if not self.enable_prefix_cache:
            return
        limit = (len(seq.token_ids) - 1) // self.page_size * self.page_size
        result = self.tree.match_prefix(seq.token_ids[:limit])
        self.tree.lock(result.node)
        seq.tree_node = result.node
        seq.block_table = list(result.pages)
        seq.num_tree_pages = len(result.pages)
        seq.num_computed_tokens = seq.num_cached_tokens = result.num_tokens

    def allocate(self, seq: PagedSequence, num_new_tokens: int) -> bool:
        """Ensure pages for `num_new_tokens` more tokens, evicting cached prefixes if
        needed. Returns False (allocating nothing) when the pool cannot supply them."""
        need = self.pages_for(seq.num_computed_tokens + num_new_tokens) - len(seq.block_table)
        if need <= 0:
            return True
        short = need - self.allocator.num_free
        if short > 0:
            self.tree.evict(short)
            if self.allocator.num_free < need:
                return False
        seq.block_table.extend(self.allocator.alloc(need))
        return True

    def cache(self, seq: PagedSequence) -> None:
        """Hand the sequence's full computed pages to the tree so others can reuse them."""
        if not self.enable_prefix_cache:
            return
        full_pages = seq.num_computed_tokens // self.page_size
        if full_pages <= seq.num_tree_pages:
            return
        tokens = seq.token_ids[: full_pages * self.page_size]
        result = self.tree.insert(tokens, seq.block_table[:full_pages])
        duplicates = []
        for i in range(seq.num_tree_pages, full_pages):
            if result.pages[i] != seq.block_table[i]:
                duplicates.append(seq.block_table[i])
                seq.block_table[i] = result.pages[i]
        self.allocator.free(duplicates)
        self.tree.lock(result.node)
        if seq.tree_node is not None:
            self.tree.unlock(seq.tree_node)
        seq.tree_node = result.node
        seq.num_tree_pages = full_pages

    def release(self, seq: PagedSequence) -> None:
        """Drop the sequence's hold on KV: unlock tree pages, free its own pages."""
        self.allocator.free(seq.block_table[seq.num_tree_pages :])
        if seq.tree_node is not None:
            self.tree.unlock(seq.tree_node)
        seq.tree_node = None
        seq.block_table = []
        seq.num_tree_pages = 0

    def check_integrity(self, live: Iterable[PagedSequence] = ()) -> None:
        """Every page is exactly one of: free, held by the tree, owned by a live sequence."""
        self.tree.check_integrity()
        self.allocator.check_integrity()
        owned = [p for s in live for p in s.block_table[s.num_tree_pages :]]
        assert len(owned) == len(set(owned)), "a page is owned by two sequences"
        total = self.allocator.num_free + self.tree.cached_pages + len(owned)
        assert total == self.num_pages, (
            f"page leak: free {self.allocator.num_free} + tree {self.tree.cached_pages} "
            f"+ sequences {len(owned)} != {self.num_pages}"
        )
