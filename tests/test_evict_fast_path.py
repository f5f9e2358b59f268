"""`DeviceEviction.evict`'s fast path (last-access keys read without a policy call,
childless leaves dropped inline without a host tier, candidates updated in place, one
batched page free) leaves the tree exactly as the plain eviction loop
(`reference.PlainEvictTree`): same pages freed, same nodes, same free list, same
candidates (`check_integrity`), for every policy, under random inserts, matches, locks,
hints, device and host evictions and loads."""

from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st
from test_eviction_candidates import OPS, apply

from agentrt.kvmanager import HostTier, ManualTransfer, PageAllocator, RadixNode, RadixTree
from agentrt.kvmanager.policies.lru import LRUPolicy
from agentrt.kvmanager.reference import PlainEvictTree


class MostRecentFirst(LRUPolicy):
    """An LRU subclass with its own key: the fast path must call it, not read
    ``last_access``."""

    def key(self, node: RadixNode) -> int:
        return -node.last_access


def build(cls: type[RadixTree], policy: str, ps: int, device: int, host: int) -> RadixTree:
    chosen = MostRecentFirst() if policy == "mru" else policy
    tree = cls(ps, PageAllocator(device), chosen)
    if host:
        HostTier(tree, PageAllocator(host), ManualTransfer())
    if policy == "belady":
        tree.policy.set_future(["b", "a", "b", "a"])
    return tree


@settings(max_examples=300, deadline=None)
@given(
    policy=st.sampled_from(["lru", "hicache", "kvflow", "belady", "mru"]),
    ps=st.integers(1, 2),
    device=st.integers(2, 14),
    host=st.sampled_from([0, 0, 4, 20]),
    ops=OPS,
)
@example(  # an LRU subclass with its own key, evicting one of two leaves
    policy="mru",
    ps=1,
    device=7,
    host=0,
    ops=[("insert", [0] * 6, None, 0), ("insert", [1], None, 0), ("insert", [0], None, 0)],
)
def test_fast_eviction_equals_the_plain_loop(policy, ps, device, host, ops):
    fast = build(RadixTree, policy, ps, device, host)
    slow = build(PlainEvictTree, policy, ps, device, host)
    locked_fast: list[RadixNode] = []
    locked_slow: list[RadixNode] = []
    for op in ops:
        seen_fast = apply(fast, locked_fast, op, True)
        seen_slow = apply(slow, locked_slow, op, True)
        assert seen_fast == seen_slow, op
        assert fast.pretty() == slow.pretty(), op
        assert sorted(fast.allocator._free_heap) == sorted(slow.allocator._free_heap)
        assert (fast.version, fast.evictable_pages) == (slow.version, slow.evictable_pages)
        fast.check_integrity()  # includes: candidates == a full scan


def test_eviction_frees_a_chain_and_its_siblings_in_lru_order():
    """Without a host tier: leaves go first, a parent once its last child is gone, and
    the freed pages come back to the allocator (lowest first on the next alloc)."""
    allocator = PageAllocator(8)
    tree = RadixTree(1, allocator)
    for tokens in ([1, 2, 3], [1, 2, 4], [5]):
        mine = allocator.alloc(len(tokens))
        result = tree.insert(tokens, mine)
        allocator.free([p for p, k in zip(mine, result.pages, strict=True) if p != k])
    # tree: [1,2] -> [3], [4]; [5], on 5 pages. Oldest leaf first: [3], then [4], then
    # [1,2] (older than [5]).
    assert allocator.num_free == 3
    assert tree.eviction.evict(2) == 2
    assert allocator.num_free == 5
    tree.check_integrity()
    assert tree.eviction.evict(2) == 2  # [1, 2] as one node
    assert [n.key for n in tree.root.children.values()] == [(5,)]
    tree.check_integrity()
