"""`RadixTree.check_integrity` detects each kind of corruption, with a clear message."""

from collections.abc import Callable

import pytest
from radix_helpers import cache, make

from agentrt.kvmanager import (
    PageAllocator,
    RadixNode,
    RadixTree,
)


def _corrupt_tree() -> tuple[PageAllocator, RadixTree]:
    allocator, tree = make()
    cache(tree, [1, 2, 3, 4])
    cache(tree, [1, 2, 5, 6])
    tree.locks.lock(tree.match_prefix([1, 2, 3, 4]).node)
    return allocator, tree


def _upper(tree: RadixTree) -> RadixNode:
    return tree.root.children[(1, 2)]


def _leaf(tree: RadixTree) -> RadixNode:
    return _upper(tree).children[(3, 4)]


def _wrong_key(tree: RadixTree) -> None:
    _leaf(tree).key = (3, 4, 5)


def _wrong_child_key(tree: RadixTree) -> None:
    _upper(tree).children[(9, 9)] = _upper(tree).children.pop((5, 6))


def _wrong_parent(tree: RadixTree) -> None:
    _leaf(tree).parent = tree.root


def _page_twice(tree: RadixTree) -> None:
    _leaf(tree).pages = list(_upper(tree).pages)


def _free_page(tree: RadixTree) -> None:
    tree.allocator.free(_leaf(tree).pages)


def _negative_lock(tree: RadixTree) -> None:
    _upper(tree).children[(5, 6)].lock_ref = -1


def _parent_lock_low(tree: RadixTree) -> None:
    _upper(tree).lock_ref = 0


def _cached_counter(tree: RadixTree) -> None:
    tree.cached_pages += 1


def _evictable_counter(tree: RadixTree) -> None:
    tree.evictable_pages -= 1


@pytest.mark.parametrize(
    ("corrupt", "message"),
    [
        (_wrong_key, "key length 3 != 1 pages \\* 2"),
        (_wrong_child_key, "stored under key \\(9, 9\\)"),
        (_wrong_parent, "is not its parent's child|has parent"),
        (_page_twice, "held by both"),
        (_free_page, "is free in the allocator"),
        (_negative_lock, "negative lock_ref"),
        (_parent_lock_low, "lock_ref 0 < children's sum 1"),
        (_cached_counter, "cached_pages counter 4 != recount 3"),
        (_evictable_counter, "evictable_pages counter 0 != recount 1"),
    ],
)
def test_check_integrity_detects(corrupt: Callable[[RadixTree], None], message: str) -> None:
    _, tree = _corrupt_tree()
    tree.check_integrity()
    corrupt(tree)
    with pytest.raises(AssertionError, match=message):
        tree.check_integrity()
