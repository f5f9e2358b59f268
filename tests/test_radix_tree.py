"""Radix tree: matching, insertion and splits, locking, LRU eviction, reset."""

import pytest
from radix_helpers import cache, make, path_tokens


def test_empty_match_returns_root() -> None:
    _, tree = make()
    m = tree.match_prefix([1, 2, 3])
    assert (m.pages, m.num_tokens, m.node) == ([], 0, tree.root)
    cache(tree, [1, 2])
    m = tree.match_prefix([1])  # shorter than one page
    assert (m.pages, m.num_tokens, m.node) == ([], 0, tree.root)
    m = tree.match_prefix([5, 6, 1, 2])
    assert m.node is tree.root and m.num_tokens == 0


def test_match_ignores_trailing_partial_page() -> None:
    _, tree = make()
    pages = cache(tree, [1, 2, 3, 4])
    m = tree.match_prefix([1, 2, 3, 4, 5])
    assert (m.pages, m.num_tokens) == (pages, 4)
    m = tree.match_prefix([1, 2, 3])
    assert (m.pages, m.num_tokens) == (pages[:1], 2)


def test_split_on_match() -> None:
    allocator, tree = make()
    pages = cache(tree, [1, 2, 3, 4, 5, 6])
    (original,) = tree.root.children.values()
    m = tree.match_prefix([1, 2, 3, 4, 9, 9])
    assert (m.pages, m.num_tokens) == (pages[:2], 4)
    assert m.node.key == (1, 2, 3, 4) and m.node.pages == pages[:2]
    assert m.node.is_leaf is False and m.node.parent is tree.root
    assert original.key == (5, 6) and original.pages == pages[2:] and original.parent is m.node
    assert m.node.children == {(5, 6): original}
    assert tree.cached_pages == 3 and allocator.num_used == 3
    tree.check_integrity()


def test_split_on_insert() -> None:
    _, tree = make()
    a = cache(tree, [1, 2, 3, 4, 5, 6])
    new = tree.allocator.alloc(3)
    result = tree.insert([1, 2, 3, 4, 7, 8], new)
    assert result.pages == [a[0], a[1], new[2]]
    assert result.num_existing == 4
    assert result.node.key == (7, 8) and path_tokens(result.node) == (1, 2, 3, 4, 7, 8)
    upper = result.node.parent
    assert upper is not None and upper.key == (1, 2, 3, 4)
    assert set(upper.children) == {(5, 6), (7, 8)}
    tree.allocator.free(new[:2])
    assert tree.cached_pages == 4
    tree.check_integrity()


def test_insert_prefix_of_existing_splits_and_returns_upper_node() -> None:
    _, tree = make()
    a = cache(tree, [1, 2, 3, 4, 5, 6])
    mine = tree.allocator.alloc(1)
    result = tree.insert([1, 2], mine)
    assert (result.pages, result.num_existing) == (a[:1], 2)
    assert result.node.key == (1, 2) and result.node.parent is tree.root
    tree.allocator.free(mine)
    tree.check_integrity()


def test_duplicate_insert_returns_tree_pages_and_does_not_free_callers() -> None:
    allocator, tree = make()
    first = cache(tree, [1, 2, 3, 4])
    dup = allocator.alloc(2)
    result = tree.insert([1, 2, 3, 4], dup)
    assert result.pages == first and result.num_existing == 4
    assert tree.cached_pages == 2
    assert allocator.num_used == 4  # the duplicates are still the caller's
    assert not any(allocator.is_free(p) for p in dup)
    allocator.free(dup)
    tree.check_integrity()


def test_insert_errors() -> None:
    allocator, tree = make()
    with pytest.raises(ValueError, match="len\\(tokens\\) == len\\(pages\\) \\* page_size"):
        tree.insert([1, 2, 3], allocator.alloc(2))
    with pytest.raises(ValueError, match="not allocated"):
        tree.insert([1, 2], [allocator.num_pages - 1])
    result = tree.insert([], [])
    assert (result.pages, result.num_existing, result.node) == ([], 0, tree.root)
    assert tree.cached_pages == 0
    tree.check_integrity()


def test_lock_protects_from_evict() -> None:
    allocator, tree = make()
    cache(tree, [1, 2, 3, 4])
    m = tree.match_prefix([1, 2, 3, 4])
    tree.locks.lock(m.node)
    assert tree.evictable_pages == 0 and tree.cached_pages == 2
    assert tree.eviction.evict(10) == 0
    assert tree.match_prefix([1, 2, 3, 4]).num_tokens == 4
    tree.locks.unlock(m.node)
    assert tree.evictable_pages == 2
    assert tree.eviction.evict(10) == 2
    assert allocator.num_free == allocator.num_pages and tree.cached_pages == 0
    tree.check_integrity()


def test_lock_covers_ancestors_but_not_siblings() -> None:
    _, tree = make()
    cache(tree, [1, 2, 3, 4])
    cache(tree, [1, 2, 5, 6])
    node = tree.match_prefix([1, 2, 3, 4]).node
    tree.locks.lock(node)
    assert node.lock_ref == 1 and node.parent is not None and node.parent.lock_ref == 1
    assert tree.root.lock_ref == 0
    assert tree.evictable_pages == 1
    assert tree.eviction.evict(10) == 1
    assert tree.match_prefix([1, 2, 5, 6]).num_tokens == 2
    tree.locks.unlock(node)
    tree.check_integrity()


def test_split_of_locked_node_keeps_lock_counts() -> None:
    _, tree = make()
    cache(tree, [1, 2, 3, 4, 5, 6])
    held = tree.match_prefix([1, 2, 3, 4, 5, 6]).node
    tree.locks.lock(held)
    tree.locks.lock(held)
    upper = tree.match_prefix([1, 2, 9, 9]).node
    assert upper is not held and held.parent is upper
    assert upper.lock_ref == 2 and held.lock_ref == 2
    tree.check_integrity()
    tree.locks.unlock(held)
    tree.locks.unlock(held)
    assert upper.lock_ref == 0 and tree.evictable_pages == 3
    with pytest.raises(ValueError, match="not locked"):
        tree.locks.unlock(held)
    tree.check_integrity()


def test_unlock_below_zero_raises() -> None:
    _, tree = make()
    cache(tree, [1, 2])
    node = tree.match_prefix([1, 2]).node
    with pytest.raises(ValueError, match="not locked"):
        tree.locks.unlock(node)
    assert node.lock_ref == 0


def test_lock_of_evicted_node_raises() -> None:
    _, tree = make()
    cache(tree, [1, 2])
    node = tree.match_prefix([1, 2]).node
    tree.eviction.evict(1)
    with pytest.raises(ValueError, match="not in this tree"):
        tree.locks.lock(node)


def test_lru_order() -> None:
    _, tree = make()
    a = cache(tree, [1, 1])
    cache(tree, [2, 2])
    c = cache(tree, [3, 3])
    tree.match_prefix([1, 1])  # A is now the most recent; B the oldest
    assert tree.eviction.evict(1) == 1
    assert tree.match_prefix([2, 2]).num_tokens == 0
    assert tree.eviction.evict(1) == 1
    assert tree.match_prefix([3, 3]).num_tokens == 0
    assert tree.match_prefix([1, 1]).pages == a
    assert c  # C's page went back to the allocator
    assert tree.allocator.is_free(c[0])
    tree.check_integrity()


def test_evict_cascades_to_parents_leaves_first() -> None:
    allocator, tree = make()
    cache(tree, [1, 2, 3, 4, 5, 6])
    cache(tree, [1, 2, 3, 4, 7, 8])
    cache(tree, [9, 9])
    tree.match_prefix([9, 9])
    # [1,2,3,4] has two leaf children; it only becomes a candidate once both are gone.
    assert tree.eviction.evict(2) == 2
    upper = tree.root.children[(1, 2)]
    assert upper.key == (1, 2, 3, 4) and upper.is_leaf and upper.lock_ref == 0
    assert set(tree.root.children) == {(1, 2), (9, 9)}
    assert tree.eviction.evict(1) == 2  # the whole 2-page parent goes at once
    assert tree.match_prefix([1, 2]).num_tokens == 0
    assert tree.match_prefix([9, 9]).num_tokens == 2
    assert tree.eviction.evict(100) == 1
    assert allocator.num_free == allocator.num_pages
    tree.check_integrity()


def test_evict_cascades_within_one_call() -> None:
    allocator, tree = make()
    cache(tree, [1, 2, 3, 4])
    cache(tree, [1, 2, 5, 6])
    assert tree.eviction.evict(3) == 3  # both leaves, then their parent once it is a leaf
    assert tree.root.children == {} and allocator.num_free == allocator.num_pages
    tree.check_integrity()


def test_evict_nonpositive_is_noop() -> None:
    _, tree = make()
    cache(tree, [1, 2])
    assert tree.eviction.evict(0) == 0 and tree.eviction.evict(-3) == 0
    assert tree.cached_pages == 1


def test_reset() -> None:
    allocator, tree = make()
    cache(tree, [1, 2, 3, 4])
    cache(tree, [1, 2, 5, 6])
    node = tree.match_prefix([1, 2, 5, 6]).node
    tree.locks.lock(node)
    with pytest.raises(RuntimeError, match="locked"):
        tree.reset()
    tree.locks.unlock(node)
    tree.reset()
    assert allocator.num_free == allocator.num_pages
    assert (tree.cached_pages, tree.evictable_pages) == (0, 0)
    assert tree.match_prefix([1, 2]).num_tokens == 0
    with pytest.raises(ValueError, match="not in this tree"):
        tree.locks.lock(node)
    tree.check_integrity()


def test_page_size_one_and_last_access_clock() -> None:
    _, tree = make(page_size=1)
    cache(tree, [7, 8, 9])
    t0 = tree.clock
    m = tree.match_prefix([7, 8])
    assert tree.clock == t0 + 1
    assert m.node.key == (7, 8) and m.node.parent is tree.root
    assert m.node.last_access == t0 + 1
    (lower,) = m.node.children.values()
    assert lower.key == (9,) and lower.last_access == t0
    assert tree.match_prefix([7, 8, 9]).node is lower
    assert lower.last_access == m.node.last_access == t0 + 2


def test_pretty_and_repr() -> None:
    _, tree = make()
    cache(tree, [1, 2, 3, 4])
    assert "cached=2" in tree.pretty() and "key=(1, 2, 3, 4)" in tree.pretty()
    assert "policy='lru'" in repr(tree)
