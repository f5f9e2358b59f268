"""`PathLocks.relock(old, new)`: the same tree as ``lock(new)`` then ``unlock(old)``
(lock counts, evictable pages, version, eviction candidates), also where ``new`` is an
existing unlocked node below ``old`` (an eviction candidate until then)."""

from __future__ import annotations

import pytest
from radix_helpers import cache, make

from agentrt.kvmanager import RadixNode, RadixTree


def twin_trees() -> list[tuple[RadixTree, RadixNode, RadixNode]]:
    """Two identical trees, each with ``old`` = [1, 2, 3, 4] locked and ``new`` =
    [5, 6, 7, 8] below it, cached earlier and unlocked."""
    out = []
    for _ in range(2):
        _, tree = make(page_size=2, num_pages=16)
        cache(tree, [1, 2, 3, 4, 5, 6, 7, 8])
        cache(tree, [1, 2, 9, 9])  # splits [1, 2] off: `old` has an ancestor
        old = tree.match_prefix([1, 2, 3, 4]).node
        tree.locks.lock(old)
        new = tree.insert_below(old, [5, 6, 7, 8], [14, 15]).node
        assert new.lock_ref == 0 and new.parent is old
        tree.check_integrity()  # brings the candidates up to date: `new` is one
        out.append((tree, old, new))
    return out


def same(a: RadixTree, b: RadixTree) -> None:
    a.check_integrity()  # includes: incremental candidates == a full scan
    b.check_integrity()
    assert a.pretty() == b.pretty()
    assert (a.version, a.evictable_pages) == (b.version, b.evictable_pages)


def test_relock_onto_an_existing_node_below_equals_lock_then_unlock():
    (fast, old_f, new_f), (slow, old_s, new_s) = twin_trees()
    fast.locks.relock(old_f, new_f)
    slow.locks.lock(new_s)
    slow.locks.unlock(old_s)
    same(fast, slow)
    assert new_f.lock_ref == 1 and old_f.lock_ref == 1
    assert fast.eviction.evict(16) == slow.eviction.evict(16)  # the now-locked node is not evicted
    same(fast, slow)
    fast.locks.unlock(new_f)
    slow.locks.unlock(new_s)
    same(fast, slow)


def test_relock_from_none_root_or_an_unrelated_node():
    (fast, old_f, new_f), (slow, old_s, new_s) = twin_trees()
    other_f = fast.match_prefix([1, 2, 9, 9]).node  # a sibling branch, not an ancestor
    other_s = slow.match_prefix([1, 2, 9, 9]).node
    fast.locks.lock(other_f)
    slow.locks.lock(other_s)
    fast.locks.relock(other_f, new_f)
    slow.locks.lock(new_s)
    slow.locks.unlock(other_s)
    same(fast, slow)
    fast.locks.relock(None, other_f)
    slow.locks.lock(other_s)
    same(fast, slow)
    fast.locks.relock(fast.root, old_f)
    slow.locks.lock(old_s)
    same(fast, slow)


def test_relock_from_an_unlocked_node_raises():
    ((tree, old, new), _) = twin_trees()
    tree.locks.unlock(old)
    with pytest.raises(ValueError, match="not locked"):
        tree.locks.relock(old, new)
