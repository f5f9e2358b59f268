"""The tree's incremental eviction candidates evict in exactly the order of the full scan
they replaced (`reference.ScanTree`), for every policy, under random inserts, matches,
locks, hint changes, device and host evictions and loads (`agentrt.kvmanager.candidates`).
The path shortcuts (`insert_below`, `touch_prefix`) leave the tree exactly as `insert`
from the root and `match_prefix` do."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from radix_helpers import path_tokens

from agentrt.kvmanager import HostTier, ManualTransfer, PageAllocator, RadixNode, RadixTree
from agentrt.kvmanager.radix_node import InsertResult
from agentrt.kvmanager.reference import ScanTree


def build(cls: type[RadixTree], policy: str, ps: int, device: int, host: int) -> RadixTree:
    """A ``cls`` tree, with a host tier (``tree.host``) of ``host`` pages unless 0."""
    tree = cls(ps, PageAllocator(device), policy)
    if host:
        HostTier(tree, PageAllocator(host), ManualTransfer())
    if policy == "belady":
        tree.policy.set_future(["b", "a", "b", "a"])
    return tree


OPS = st.lists(
    st.tuples(
        st.sampled_from(
            ["insert", "match", "unlock", "evict", "evict_host", "hints", "load", "extend", "touch"]
        ),
        st.lists(st.integers(0, 2), min_size=1, max_size=6),
        st.sampled_from([None, "a", "b"]),
        st.integers(0, 6),
    ),
    max_size=40,
)


def tree_pages(node: RadixNode) -> list[int]:
    """The device pages of the path from the root to ``node``."""
    parts = []
    while node.parent is not None:
        parts.append(node.pages)
        node = node.parent
    return [p for pages in reversed(parts) for p in pages]


def apply(tree: RadixTree, locked: list[RadixNode], op: tuple, fast: bool) -> object:
    """One operation; returns what it observed (compared between the two trees).
    ``fast``: use the path shortcuts (the other tree uses the plain operations)."""
    name, pages, agent, n = op
    tokens = [t for p in pages for t in (p,) * tree.page_size]
    if name in ("extend", "touch"):
        if not locked:
            return None
        held = locked[n % len(locked)]
        path = list(path_tokens(held))
        if name == "touch":
            cut = (n % (len(path) // tree.page_size) + 1) * tree.page_size
            if not fast:
                return tree.match_prefix(path[:cut]).node.id
            return tree.touch_prefix(held, cut, len(path) if n % 2 else None).id
        need = len(pages)
        if tree.allocator.num_free < need:
            return None
        mine = tree.allocator.alloc(need)
        theirs = [0] * (len(path) // tree.page_size)  # the tree holds these positions
        if fast:  # the tail only, counted from `held`
            held_pages = tree_pages(held)
            below = tree.insert_below(held, tokens, mine)
            result = InsertResult(
                [*held_pages, *below.pages], len(path) + below.num_existing, below.node
            )
        else:
            result = tree.insert(path + tokens, theirs + mine)
        kept = result.pages[len(theirs) :]
        tree.allocator.free([p for i, p in enumerate(mine) if i >= len(kept) or kept[i] != p])
        if n % 3 == 0:  # move the hold to the new node, as KVCacheManager.cache does
            tree.locks.lock(result.node)
            tree.locks.unlock(held)
            locked[locked.index(held)] = result.node
        return result.pages, result.num_existing, result.node.id
    if name == "insert":
        need = len(pages)
        if tree.allocator.num_free < need:
            tree.eviction.evict(need - tree.allocator.num_free)
        if tree.allocator.num_free < need:
            return None
        mine = tree.allocator.alloc(need)
        result = tree.insert(tokens, mine)
        tree.allocator.free(
            [p for i, p in enumerate(mine) if i >= len(result.pages) or result.pages[i] != p]
        )
        node = result.node
        while agent is not None and node is not tree.root:
            node.agents.add(agent)
            node = node.parent
        if n % 2 and result.node is not tree.root:
            tree.locks.lock(result.node)
            locked.append(result.node)
        return result.pages
    if name == "match":
        result = tree.match_prefix(tokens)
        if result.node is not tree.root:
            tree.locks.lock(result.node)
            locked.append(result.node)
        return result.pages
    if name == "unlock":
        if locked:
            tree.locks.unlock(locked.pop(n % len(locked)))
        return None
    if name == "evict":
        return tree.eviction.evict(n)
    if name == "evict_host":
        return tree.host.evict(n) if tree.host is not None else 0
    if name == "hints":
        tree.policy.update_hints({"a": n % 3, "b": (n + 1) % 3})
        if tree.policy.name == "belady":
            tree.policy.on_request("ab"[n % 2])
        return None
    host = tree.host  # load
    if host is None:
        return None
    found = host.match(tokens)
    if not found.nodes or found.loading:
        return None
    pending = host.start_load(found.nodes)
    if pending is None:
        return None
    host.finish_load(pending, ok=bool(n % 2))
    return pending.op


@settings(max_examples=300, deadline=None)
@given(
    policy=st.sampled_from(["lru", "hicache", "kvflow", "belady"]),
    ps=st.integers(1, 2),
    device=st.integers(2, 14),
    host=st.integers(0, 20),
    ops=OPS,
)
def test_incremental_candidates_evict_in_the_full_scan_order(policy, ps, device, host, ops):
    fast, slow = (
        build(RadixTree, policy, ps, device, host),
        build(ScanTree, policy, ps, device, host),
    )
    locked_fast: list[RadixNode] = []
    locked_slow: list[RadixNode] = []
    for op in ops:
        seen_fast = apply(fast, locked_fast, op, True)
        seen_slow = apply(slow, locked_slow, op, False)
        assert seen_fast == seen_slow, op
        assert fast.pretty() == slow.pretty(), op
        assert fast.allocator._free_heap == slow.allocator._free_heap
        assert (fast.version, fast.evictable_pages) == (slow.version, slow.evictable_pages)
        fast.check_integrity()  # includes: candidates == a full scan
