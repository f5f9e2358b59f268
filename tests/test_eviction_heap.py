"""The eviction heap kept between evictions (policies whose keys only grow: lru,
hicache) evicts in exactly the order of a heap built per eviction, also when candidates
are touched without a mark (a re-insert), locked and unlocked, or extended."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from agentrt.kvmanager import PageAllocator, RadixNode, RadixTree


def twins(policy: str, pages: int) -> tuple[RadixTree, RadixTree]:
    lazy = RadixTree(1, PageAllocator(pages), policy)
    plain = RadixTree(1, PageAllocator(pages), policy)
    assert lazy._cands.lazy
    plain._cands.lazy = False  # the reference: a heap of all candidates per eviction
    return lazy, plain


def step(tree: RadixTree, locked: list[RadixNode], op: tuple[str, list[int], int]) -> object:
    name, tokens, n = op
    if name == "insert":  # also a touch of every node on an existing path
        if tree.allocator.num_free < len(tokens):
            tree.evict(len(tokens) - tree.allocator.num_free)
        if tree.allocator.num_free < len(tokens):
            return None
        mine = tree.allocator.alloc(len(tokens))
        result = tree.insert(tokens, mine)
        tree.allocator.free([p for p, q in zip(mine, result.pages, strict=True) if p != q])
        return result.pages
    if name == "lock":
        node = tree.match_prefix(tokens).node
        if node is not tree.root:
            tree.lock(node)
            locked.append(node)
        return node.id
    if name == "unlock":
        if locked:
            tree.unlock(locked.pop(n % len(locked)))
        return None
    return tree.evict(n)


OPS = st.lists(
    st.tuples(
        st.sampled_from(["insert", "insert", "lock", "unlock", "evict"]),
        st.lists(st.integers(0, 2), min_size=1, max_size=4),
        st.integers(1, 4),
    ),
    max_size=50,
)


@settings(max_examples=300, deadline=None)
@given(policy=st.sampled_from(["lru", "hicache"]), pages=st.integers(3, 12), ops=OPS)
def test_kept_heap_evicts_like_a_fresh_heap(policy, pages, ops):
    lazy, plain = twins(policy, pages)
    held_lazy: list[RadixNode] = []
    held_plain: list[RadixNode] = []
    for op in ops:
        assert step(lazy, held_lazy, op) == step(plain, held_plain, op), op
        assert lazy.pretty() == plain.pretty(), op
        assert lazy.allocator._free_heap == plain.allocator._free_heap
        lazy.check_integrity()  # includes: every candidate has a heap entry <= its key


def test_a_touched_candidate_is_evicted_after_older_ones():
    lazy, plain = twins("lru", 6)
    for tree in (lazy, plain):
        for tokens in ([1, 2], [3, 4], [1, 2]):  # the second [1, 2]: a touch, no mark
            step(tree, [], ("insert", tokens, 0))
            tree.check_integrity()
        assert tree.evict(1) == 2
        assert [n.key for n in tree.root.children.values()] == [(1, 2)]
