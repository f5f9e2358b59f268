"""Two-tier radix tree and KV manager, pure bookkeeping: eviction orders and tier moves."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pytest

from agentrt.kvmanager import (
    HostTier,
    KVCacheManager,
    ManualTransfer,
    NullTransfer,
    PageAllocator,
    Prepared,
    RadixTree,
)


def _tree(policy: str, device: int = 32, host: int = 32, transfer=None, **kw) -> RadixTree:
    """A tree with a host tier (``tree.host``)."""
    tree = RadixTree(2, PageAllocator(device), policy)
    HostTier(tree, PageAllocator(host), transfer or NullTransfer(), **kw)
    return tree


def _insert(tree: RadixTree, tokens: list[int], agents: set[str] = frozenset()):
    pages = tree.allocator.alloc(len(tokens) // tree.page_size)
    result = tree.insert(tokens, pages)
    tree.allocator.free([p for p, k in zip(pages, result.pages, strict=True) if p != k])
    node = result.node
    node.agents |= set(agents)
    return node


def test_kvflow_evicts_suffixes_then_farthest_agent_first() -> None:
    tree = _tree("kvflow")
    near = _insert(tree, [1, 1, 1, 1], {"wf/near"})
    far = _insert(tree, [2, 2, 2, 2], {"wf/far"})
    mid = _insert(tree, [3, 3, 3, 3], {"wf/mid"})
    suffix = _insert(tree, [1, 1, 1, 1, 9, 9])  # dynamic part below near's prefix
    _insert(tree, [4, 4])  # touched last: LRU alone would keep it longest
    tree.policy.update_hints({"wf/near": 0, "wf/mid": 2, "wf/far": 5})
    order = []
    for _ in range(5):
        before = {id(n): n.on_device for n in (near, far, mid, suffix)}
        assert tree.eviction.evict(1) >= 1
        order += [n for n in (near, far, mid, suffix) if before[id(n)] and not n.on_device]
        tree.check_integrity()
    assert order[:4] == [suffix, far, mid, near]
    # kvflow keeps host copies of agent prefixes only; the suffix was dropped.
    assert far.tier == "host" and suffix.parent is None


def test_lru_ranks_unknown_agents_as_farthest_under_kvflow() -> None:
    tree = _tree("kvflow")
    a = _insert(tree, [1, 1], {"x"})
    b = _insert(tree, [2, 2], {"y"})
    tree.policy.update_hints({"x": 3})
    assert tree.policy.node_ste(b) == math.inf
    tree.eviction.evict(1)
    assert not b.on_device and a.on_device


def test_write_back_then_load_back() -> None:
    transfer = ManualTransfer()
    tree = _tree("hicache", device=4, host=8, transfer=transfer)
    node = _insert(tree, [1, 2, 3, 4, 5, 6, 7, 8])
    old = list(node.pages)
    assert tree.eviction.evict(4) == 4 and node.tier == "host"
    assert transfer.ops[-1].kind == "offload" and transfer.ops[-1].device_pages == tuple(old)
    assert tree.match_prefix([1, 2, 3, 4]).num_tokens == 0
    found = tree.host.match([1, 2, 3, 4, 5, 6, 7, 8, 9])
    assert (found.device_tokens, found.num_tokens, found.nodes) == (0, 8, [node])
    pending = tree.host.start_load(found.nodes)
    assert pending is not None and node.tier == "loading"
    assert pending.op.kind == "load" and pending.op.host_pages == tuple(node.host_pages)
    pending.future = transfer.load(pending.op)  # the manager's job
    tree.check_integrity()
    assert tree.eviction.evict(4) == 0  # loading nodes are never evicted
    assert tree.host.evict(8) == 0  # nor are their host pages dropped
    assert tree.match_prefix([1, 2, 3, 4]).num_tokens == 0  # not usable yet
    transfer.finish()
    assert pending.future.done()
    tree.host.finish_load(pending, ok=True)
    assert node.tier == "both"
    assert tree.match_prefix([1, 2, 3, 4, 5, 6, 7, 8]).num_tokens == 8
    tree.check_integrity()


def test_failed_load_returns_node_to_host() -> None:
    tree = _tree("hicache", device=4, host=8, transfer=ManualTransfer())
    node = _insert(tree, [1, 2, 3, 4])
    tree.eviction.evict(2)
    pending = tree.host.start_load([node])
    tree.host.finish_load(pending, ok=False)
    assert node.tier == "host" and tree.allocator.num_free == 4
    tree.check_integrity()


def test_host_eviction_drops_host_only_leaves_only() -> None:
    tree = _tree("hicache", device=4, host=4)
    a = _insert(tree, [1, 1, 2, 2])
    tree.eviction.evict(2)  # a -> host (2 host pages)
    b = _insert(tree, [3, 3, 4, 4], set())
    tree.eviction.evict(2)  # b -> host: host pool full now
    c = _insert(tree, [5, 5, 6, 6])
    tree.eviction.evict(2)  # c needs host room: the LRU host-only leaf (a) is dropped
    assert a.parent is None and b.tier == "host" and c.tier == "host"
    tree.check_integrity()


def test_write_through_copies_at_insert() -> None:
    tree = _tree("hicache", write_through=True)
    node = _insert(tree, [1, 2, 3, 4])
    assert node.tier == "both" and tree.host.cached_pages == 2
    tree.eviction.evict(2)
    assert node.tier == "host" and tree.host.offloaded_pages == 2  # no second copy


def test_insert_over_host_only_node_adopts_recomputed_pages() -> None:
    tree = _tree("hicache")
    node = _insert(tree, [1, 2, 3, 4, 5, 6])
    tree.eviction.evict(3)
    again = _insert(tree, [1, 2, 3, 4])  # recomputed part of it
    assert again.tier == "both" and again.key == (1, 2, 3, 4)
    assert node.tier == "host" and node.parent is again
    tree.check_integrity()


def test_belady_evicts_farthest_next_use() -> None:
    tree = _tree("belady")
    a = _insert(tree, [1, 1], {"a"})
    b = _insert(tree, [2, 2], {"b"})
    c = _insert(tree, [3, 3], {"c"})
    tree.policy.set_future(["a", "c", "b", "a"])
    tree.eviction.evict(1)
    assert not b.on_device and a.on_device and c.on_device
    tree.policy.on_request("a")
    tree.policy.on_request("c")  # now future = [b, a]: c is never used again
    tree.eviction.evict(1)
    assert not c.on_device and a.on_device


def test_belady_out_of_order_arrival_consumes_only_its_own_call() -> None:
    """Two instances of a -> b: one instance's b arriving before the other's a must not
    make a look unused (the remaining a is still the next call)."""
    tree = _tree("belady")
    a = _insert(tree, [1, 1], {"a"})
    b = _insert(tree, [2, 2], {"b"})
    tree.policy.set_future(["a", "a", "b", "b"])
    tree.policy.on_request("a")
    tree.policy.on_request("b")  # left: a (index 1), b (index 3)
    tree.eviction.evict(1)
    assert a.on_device and not b.on_device


@dataclass
class _Seq:
    token_ids: list[int]
    agent_id: str | None = None
    prefix_len: int | None = None
    request_id: str = "r"
    num_computed_tokens: int = 0
    num_cached_tokens: int = 0
    block_table: list[int] = field(default_factory=list)
    num_tree_pages: int = 0
    tree_node: object = None
    num_preemptions: int = 0


def _serve(kv: KVCacheManager, seq: _Seq) -> None:
    while kv.prepare(seq) is not Prepared.READY:
        kv.wait_for_loads()
    kv.match(seq)
    assert kv.allocate(seq, len(seq.token_ids) - seq.num_computed_tokens)
    seq.num_computed_tokens = len(seq.token_ids)
    kv.cache(seq)
    kv.release(seq)
    kv.check_integrity()


def test_manager_tags_agents_and_prefetches_due_prefixes() -> None:
    kv = KVCacheManager(8, 2, "kvflow", num_host_pages=16)
    _serve(kv, _Seq([1, 1, 1, 1, 7, 7, 7], "a", 4, "r1"))
    node = kv.tree.match_prefix([1, 1, 1, 1]).node
    while node is not kv.tree.root:
        assert node.agents == {"a"}
        node = node.parent
    assert kv.agent_prefixes["a"] == (1, 1, 1, 1)
    suffix = kv.tree.match_prefix([1, 1, 1, 1, 7, 7]).node
    assert suffix.agents == set()
    _serve(kv, _Seq([2] * 15, "b", 14, "r2"))  # pushes a's prefix to host
    assert kv.host.match([1, 1, 1, 1]).device_tokens == 0
    kv.update_hints({"a": 1, "b": 3})
    kv.poll()
    assert kv.stats.prefetch_loads == 1
    assert kv.host.match([1, 1, 1, 1]).device_tokens == 4
    kv.check_integrity()


def _prefetching_a(transfer: ManualTransfer, ste: int) -> KVCacheManager:
    """A kvflow manager whose agent a's prefix was pushed to host by b, then hinted at
    ``ste`` and polled (with STE <= 1 a prefetch load of it is in flight)."""
    kv = KVCacheManager(8, 2, "kvflow", num_host_pages=16, transfer=transfer)
    _serve(kv, _Seq([1, 1, 1, 1, 7], "a", 4, "r1"))
    _serve(kv, _Seq([2] * 15, "b", 14, "r2"))
    kv.update_hints({"a": ste})
    kv.poll()
    return kv


def test_prefetch_cancels_queued_loads_of_agents_no_longer_due() -> None:
    transfer = ManualTransfer()
    kv = _prefetching_a(transfer, ste=1)
    assert kv.loads_in_flight == 1
    kv.update_hints({"a": 4})
    kv.poll()
    assert kv.loads_in_flight == 0 and kv.stats.prefetch_cancelled == 1
    assert kv.host.match([1, 1, 1, 1]).nodes[0].tier == "host"
    kv.check_integrity()


def test_request_waits_on_in_flight_load_and_counts_late() -> None:
    transfer = ManualTransfer()
    kv = _prefetching_a(transfer, ste=1)
    seq = _Seq([1, 1, 1, 1, 8], "a", 4, "r3")
    assert kv.prepare(seq) is Prepared.LOADING and kv.stats.prefetch_late == 1
    transfer.finish()
    assert kv.prepare(seq) is Prepared.READY
    kv.match(seq)
    assert seq.num_cached_tokens == 4 and kv.stats.host_hit_tokens == 4


@pytest.mark.parametrize("policy", ["lru", "ideal"])
def test_device_only_policies_have_no_host_tier(policy: str) -> None:
    kv = KVCacheManager(8, 2, policy, num_host_pages=16)
    assert kv.host is None and kv.loader is None


def test_load_never_evicts_the_parent_it_hangs_below() -> None:
    tree = _tree("hicache", device=4, host=8)
    _insert(tree, [1, 1, 2, 2])
    tree.eviction.evict(2)  # whole node to host
    upper = _insert(tree, [1, 1])  # recomputed first page: split, upper on both tiers
    (lower,) = upper.children.values()
    assert upper.tier == "both" and lower.tier == "host"
    other = _insert(tree, [3, 3, 4, 4, 7, 7])  # device full; upper is the LRU device leaf
    assert tree.allocator.num_free == 0
    pending = tree.host.start_load([lower])
    assert pending is not None
    assert upper.on_device and lower.tier == "loading" and not other.on_device
    tree.check_integrity()


def test_reset_after_loads() -> None:
    transfer = ManualTransfer()
    kv = _prefetching_a(transfer, ste=0)
    with pytest.raises(RuntimeError, match="loading"):
        kv.tree.reset()
    transfer.finish()
    kv.poll()
    assert kv.stats.requests == 2 and kv.stats.prefetch_loads == 1
    kv.update_hints({"b": 0})  # loading a's prefix pushed part of b's to host
    kv.poll()
    assert kv.stats.prefetch_loads == 2 and kv.loads_in_flight == 1
    transfer.finish()
    kv.poll()
    kv.tree.reset()
    kv.check_integrity()
    assert kv.tree.cached_pages == 0 and kv.host.cached_pages == 0


@pytest.mark.parametrize(
    ("policy", "host", "reads"),
    [("lru", 16, False), ("hicache", 16, False), ("kvflow", 0, True), ("belady", 16, True)],
)
def test_reads_hints_follows_the_policy_and_the_prefetcher(policy, host, reads) -> None:
    """kvflow's key reads hints even without a host tier; belady's prefetcher plans with
    them; lru and hicache ignore them."""
    kv = KVCacheManager(8, 2, policy, num_host_pages=host)
    assert kv.reads_hints is reads


def test_waiting_for_a_load_uses_the_transfer_clock() -> None:
    """`wait_for_loads` hands the in-flight futures to `KVTransfer.wait`; with the
    wall-clock `wait_first` of `ManualTransfer` a finished load is applied at once."""
    transfer = ManualTransfer()
    kv = _prefetching_a(transfer, ste=1)
    assert kv.loads_in_flight == 1
    kv.wait_for_loads(timeout=0.01)  # nothing finished: returns after the timeout
    assert kv.loads_in_flight == 1
    transfer.finish()
    kv.wait_for_loads(timeout=0.01)
    assert kv.loads_in_flight == 0 and kv.stats.loaded_pages == 2
    kv.check_integrity()
