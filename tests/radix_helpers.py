"""Helpers for radix-tree tests: a tree over a fresh allocator, caching like a sequence."""

from __future__ import annotations

from agentrt.kvmanager import PageAllocator, RadixNode, RadixTree


def make(page_size: int = 2, num_pages: int = 16) -> tuple[PageAllocator, RadixTree]:
    allocator = PageAllocator(num_pages)
    return allocator, RadixTree(page_size, allocator)


def cache(tree: RadixTree, tokens: list[int]) -> list[int]:
    """Insert ``tokens`` with fresh pages, freeing the caller's duplicates like a sequence."""
    mine = tree.allocator.alloc(len(tokens) // tree.page_size)
    result = tree.insert(tokens, mine)
    tree.allocator.free([p for p, kept in zip(mine, result.pages, strict=True) if p != kept])
    tree.check_integrity()
    return result.pages


def path_tokens(node: RadixNode) -> tuple[int, ...]:
    parts = []
    while node.parent is not None:
        parts.append(node.key)
        node = node.parent
    return tuple(t for key in reversed(parts) for t in key)
