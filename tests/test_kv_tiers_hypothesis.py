"""Stateful test of the two-tier radix tree: random inserts, matches, locks, device and
host evictions, loads started, completed, failed and cancelled while others run.

A fake transfer backend moves page *contents* (the token prefix each page ends) between
a device and a host memory, so besides ``check_integrity`` the machine checks that every
page the tree calls resident holds the KV of exactly its tokens.
"""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from radix_helpers import path_tokens

from agentrt.kvmanager import (
    HostTier,
    ManualTransfer,
    PageAllocator,
    RadixNode,
    RadixTree,
    TransferOp,
)


class ContentTransfer(ManualTransfer):
    def __init__(self) -> None:
        super().__init__()
        self.device: dict[int, tuple[int, ...]] = {}
        self.host: dict[int, tuple[int, ...]] = {}

    def offload(self, op: TransferOp) -> None:
        super().offload(op)
        for d, h in zip(op.device_pages, op.host_pages, strict=True):
            self.host[h] = self.device[d]

    def finish(self, index: int = 0, error: BaseException | None = None) -> TransferOp:
        op, _ = self.pending[index]
        if error is None:
            for d, h in zip(op.device_pages, op.host_pages, strict=True):
                self.device[d] = self.host[h]
        return super().finish(index, error)


class TwoTierMachine(RuleBasedStateMachine):
    @initialize(
        page_size=st.integers(1, 3),
        device=st.integers(2, 16),
        host=st.integers(1, 24),
        policy=st.sampled_from(["hicache", "kvflow", "belady"]),
        write_through=st.booleans(),
        data=st.data(),
    )
    def setup(self, page_size, device, host, policy, write_through, data) -> None:
        self.ps = page_size
        self.transfer = ContentTransfer()
        self.tree = RadixTree(page_size, PageAllocator(device), policy)
        self.host = HostTier(self.tree, PageAllocator(host), self.transfer, write_through)
        if policy == "kvflow":
            self.tree.policy.update_hints({"a": 0, "b": 2})
        if policy == "belady":
            self.tree.policy.set_future(["b", "a", "b"])
        page = st.tuples(*[st.integers(0, 2)] * page_size)
        self.pool = data.draw(st.lists(page, min_size=2, max_size=3, unique=True), "pool")
        self.locked: list[RadixNode] = []

    def draw_tokens(self, data: st.DataObject) -> list[int]:
        pages = data.draw(st.lists(st.sampled_from(self.pool), min_size=1, max_size=5))
        return [t for page in pages for t in page]

    @rule(data=st.data(), agent=st.sampled_from([None, "a", "b"]), lock=st.booleans())
    def insert(self, data, agent, lock) -> None:
        tokens = self.draw_tokens(data)
        n = len(tokens) // self.ps
        alloc = self.tree.allocator
        if alloc.num_free < n:
            self.tree.eviction.evict(n - alloc.num_free)
        if alloc.num_free < n:
            return
        pages = alloc.alloc(n)
        for i, p in enumerate(pages):
            self.transfer.device[p] = tuple(tokens[: (i + 1) * self.ps])
        result = self.tree.insert(tokens, pages)
        kept = result.pages
        # pages the tree did not take (it had its own, or the path hit a load) stay ours
        alloc.free([p for i, p in enumerate(pages) if i >= len(kept) or kept[i] != p])
        if agent is not None:
            node = result.node
            while node is not self.tree.root:
                node.agents.add(agent)
                node = node.parent
        if lock and result.node is not self.tree.root:
            self.tree.locks.lock(result.node)
            self.locked.append(result.node)

    @rule(data=st.data())
    def match_and_lock(self, data) -> None:
        tokens = self.draw_tokens(data)
        result = self.tree.match_prefix(tokens)
        for i, p in enumerate(result.pages):
            assert self.transfer.device[p] == tuple(tokens[: (i + 1) * self.ps])
        if result.node is not self.tree.root:
            self.tree.locks.lock(result.node)
            self.locked.append(result.node)

    @precondition(lambda self: self.locked)
    @rule(i=st.integers(0, 100))
    def unlock(self, i) -> None:
        self.tree.locks.unlock(self.locked.pop(i % len(self.locked)))

    @rule(n=st.integers(1, 8))
    def evict(self, n) -> None:
        self.tree.eviction.evict(n)

    @rule(n=st.integers(1, 8))
    def evict_host(self, n) -> None:
        self.host.evict(n)

    @rule(data=st.data())
    def start_load(self, data) -> None:
        found = self.host.match(self.draw_tokens(data))
        if not found.nodes or found.loading:
            return
        pending = self.host.start_load(found.nodes)
        if pending is not None:
            pending.future = self.transfer.load(pending.op)

    @precondition(lambda self: self.transfer.pending)
    @rule(i=st.integers(0, 100), ok=st.booleans())
    def finish_load(self, i, ok) -> None:
        i %= len(self.transfer.pending)
        future = self.transfer.pending[i][1]
        self.transfer.finish(i, None if ok else RuntimeError("injected"))
        (pending,) = [p for p in self.host.inflight if p.future is future]
        self.host.finish_load(pending, ok=future.exception() is None)

    @precondition(lambda self: self.transfer.pending)
    @rule(i=st.integers(0, 100))
    def cancel_queued_load(self, i) -> None:
        op, future = self.transfer.pending.pop(i % len(self.transfer.pending))
        assert future.cancel()
        (pending,) = [p for p in self.host.inflight if p.future is future]
        self.host.finish_load(pending, ok=False)

    @invariant()
    def integrity(self) -> None:
        self.tree.check_integrity()
        assert self.host.pool.num_free + self.host.cached_pages == (self.host.pool.num_pages)

    @invariant()
    def contents(self) -> None:
        for node in self.tree.nodes():
            if node is self.tree.root:
                continue
            tokens = path_tokens(node)
            start = len(tokens) - len(node.key)
            for i in range(node.num_pages):
                want = tokens[: start + (i + 1) * self.ps]
                if node.on_device:
                    assert self.transfer.device[node.pages[i]] == want, node
                if node.on_host:
                    assert self.transfer.host[node.host_pages[i]] == want, node


TwoTierMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
test_two_tier_tree = TwoTierMachine.TestCase
