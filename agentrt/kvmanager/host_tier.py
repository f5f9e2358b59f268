"""The radix tree's host tier: the host page pool, write-back / write-through offloads,
host eviction and the host->device loads in flight.

Node states: see ``RadixNode.tier``. Invariants: the device tier (resident or loading
nodes) is a subtree containing the root, and resident nodes have resident parents; locked
nodes are resident; loading nodes are never evicted or split; host eviction drops only
host-only *leaves*, so a host-only node's ancestors keep a copy.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from agentrt.kvmanager.candidates import is_host_candidate
from agentrt.kvmanager.page_allocator import PageAllocator
from agentrt.kvmanager.radix_node import HostMatch, RadixNode
from agentrt.kvmanager.radix_tree import RadixTree
from agentrt.kvmanager.transfer import KVTransfer, NullTransfer, TransferOp
from agentrt.kvmanager.tree_integrity import check_host_pages, check_loads


@dataclass(eq=False)
class PendingLoad:
    """One host->device load: ``nodes`` (a parent-to-child chain) and its transfer order.
    ``future`` is filled in by whoever submits ``op`` to a ``KVTransfer``."""

    op: TransferOp
    nodes: list[RadixNode]
    future: Any = None
    meta: dict = field(default_factory=dict)


class HostTier:
    """Host copies for ``tree`` (attached on construction, before anything is cached):
    ``pool`` holds them, ``transfer`` moves the bytes. ``write_through``: copy each new
    leaf to host at insert (where the policy wants a copy) instead of at eviction."""

    def __init__(
        self,
        tree: RadixTree,
        pool: PageAllocator,
        transfer: KVTransfer | None = None,
        write_through: bool = False,
    ) -> None:
        self.tree = tree
        self.pool = pool
        self.transfer: KVTransfer = transfer or NullTransfer()
        self.write_through = write_through
        self.cached_pages = 0  # host pages held by the tree's nodes
        self.offloaded_pages = 0  # pages copied to host (a statistic; reset by the manager)
        self.inflight: list[PendingLoad] = []
        self._pinned: set[int] = set()  # nodes a load is about to read: keep on host
        tree.attach_host(self)

    def keep_copy(self, node: RadixNode) -> None:
        if not node.on_host and self.tree.policy.wants_host_copy(node):
            self._offload(node)

    def free(self, pages: list[int]) -> None:
        self.pool.free(pages)
        self.cached_pages -= len(pages)

    def _offload(self, node: RadixNode) -> bool:
        """Copy ``node``'s device pages to fresh host pages (synchronously)."""
        host = self._alloc(len(node.pages))
        if host is None:
            return False
        node.offloading = True
        try:
            self.transfer.offload(TransferOp("offload", tuple(node.pages), tuple(host)))
        finally:
            node.offloading = False
        node.host_pages = host
        self.tree.candidates.mark(node)
        self.cached_pages += len(host)
        self.offloaded_pages += len(host)
        return True

    def _alloc(self, n: int) -> list[int] | None:
        pool = self.pool
        if n > pool.num_pages:
            return None
        if pool.num_free < n:
            self.evict(n - pool.num_free)
            if pool.num_free < n:
                return None
        return pool.alloc(n)

    def match(self, tokens: Sequence[int]) -> HostMatch:
        """Read-only probe: the device prefix of ``tokens``, then the non-device nodes
        (host-only or loading) that extend it. Nodes are reported whole even when the
        tokens diverge inside the last one."""
        tree = self.tree
        ps = tree.page_size
        tokens = tuple(tokens[: len(tokens) // ps * ps])
        node, pos = tree.root, 0
        device_tokens = 0
        nodes: list[RadixNode] = []
        while pos < len(tokens):
            child = node.children.get(tokens[pos : pos + ps])
            if child is None:
                break
            n = tree.common_pages(child, tokens, pos)
            if child.on_device:
                assert not nodes, "device node below a non-device node"
                device_tokens += n * ps
            else:
                nodes.append(child)
            pos += n * ps
            if n < child.num_pages:
                break
            node = child
        return HostMatch(device_tokens, nodes, pos - device_tokens)

    def evict(self, num_pages: int) -> int:
        """Drop host-only leaves in policy order until ``num_pages`` host pages are freed."""
        if num_pages <= 0:
            return 0
        key = self.tree.policy.key
        pinned = self._pinned
        heap = [(key(n), n.id, n) for n in self.tree.host_candidates() if n.id not in pinned]
        heapq.heapify(heap)
        freed = 0
        while heap and freed < num_pages:
            _, _, node = heapq.heappop(heap)
            parent = node.parent
            assert parent is not None
            freed += len(node.host_pages)
            self.tree.eviction.drop_subtree(node)
            if is_host_candidate(parent) and parent.id not in pinned:
                heapq.heappush(heap, (key(parent), parent.id, parent))
        return freed

    def start_load(self, nodes: list[RadixNode], bound: Any = None) -> PendingLoad | None:
        """Allocate device pages for a chain of host-only nodes (parent to child, the first
        one's parent resident) and return the load order, or None when the device pool
        cannot supply the pages (evicting only nodes with policy key below ``bound``)."""
        if not nodes:
            return None
        tree, device = self.tree, self.tree.allocator
        first_parent = nodes[0].parent
        assert first_parent is not None
        assert first_parent is tree.root or first_parent.on_device, "load below a non-resident"
        for a, b in zip(nodes, nodes[1:], strict=False):
            assert b.parent is a
        assert all(n.on_host and not n.pages for n in nodes), "load of a non host-only node"
        need = sum(len(n.host_pages) for n in nodes)
        if need > device.num_pages:
            return None
        if device.num_free < need:
            # Device eviction may offload, and making host room must not drop the chain.
            guard = first_parent is not tree.root
            if guard:
                tree.locks.lock(first_parent)
            self._pinned = {n.id for n in nodes}
            try:
                tree.eviction.evict(need - device.num_free, bound)
            finally:
                self._pinned = set()
                if guard:
                    tree.locks.unlock(first_parent, quiet=True)
            if device.num_free < need:
                return None
        pages = device.alloc(need)
        mark = tree.candidates.mark
        mark(first_parent)
        i = 0
        for n in nodes:
            n.pages = pages[i : i + len(n.host_pages)]
            i += len(n.host_pages)
            n.loading = True
            mark(n)
        tree.cached_pages += need
        tree.version += 1
        host = tuple(p for n in nodes for p in n.host_pages)
        pending = PendingLoad(TransferOp("load", tuple(pages), host), list(nodes))
        self.inflight.append(pending)
        return pending

    def finish_load(self, pending: PendingLoad, ok: bool) -> None:
        """Mark a load done: its nodes become resident (``ok``) or go back to host-only,
        freeing the device pages (failed or cancelled before it started)."""
        self.inflight.remove(pending)
        tree = self.tree
        tree.version += 1
        mark = tree.candidates.mark
        mark(pending.nodes[0].parent)
        for n in pending.nodes:
            assert n.loading and n.lock_ref == 0
            n.loading = False
            mark(n)
            if ok:
                tree.evictable_pages += len(n.pages)
            else:
                tree.allocator.free(n.pages)
                tree.cached_pages -= len(n.pages)
                n.pages = []

    def check_integrity(self, nodes: list[RadixNode]) -> None:
        pool = self.pool
        pool.check_integrity()
        held = check_host_pages(nodes, pool)
        assert held == self.cached_pages, f"host cached_pages {self.cached_pages} != {held}"
        assert pool.num_free + held == pool.num_pages, (
            f"host page leak: free {pool.num_free} + tree {held} != {pool.num_pages}"
        )
        check_loads(((p.op, p.nodes) for p in self.inflight), nodes)
