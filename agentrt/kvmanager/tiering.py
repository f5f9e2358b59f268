"""Device/host tiering of the radix tree: eviction with write-back, host eviction, loads.

States of a non-root node (see ``RadixNode.tier``): ``device`` (device pages only),
``host`` (host copy only), ``both``, ``loading`` (device pages allocated, host->device copy
in flight) and ``offloading`` (only inside an offload call). Invariants:

- a node with device pages (resident or loading) has a parent with device pages, and a
  resident node's parent is resident: the device tier is a subtree containing the root;
- locked nodes are resident; loading nodes are never evicted or split;
- host eviction drops only host-only *leaves*, so a host-only node's ancestors keep a copy.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from agentrt.kvmanager.policies.lru import LRUPolicy
from agentrt.kvmanager.transfer import TransferOp

if TYPE_CHECKING:
    from agentrt.kvmanager.radix_node import RadixNode
    from agentrt.kvmanager.radix_tree import RadixTree


@dataclass(eq=False)
class PendingLoad:
    """One host->device load: ``nodes`` (a parent-to-child chain) and its transfer order.
    ``future`` is filled in by whoever submits ``op`` to a ``KVTransfer``."""

    op: TransferOp
    nodes: list[RadixNode]
    future: Any = None
    tag: object = None
    meta: dict = field(default_factory=dict)


class TieringMixin:
    """Tier operations of ``RadixTree`` (kept apart to keep each file one concept)."""

    def _init_tiering(self: RadixTree) -> None:
        self.inflight: list[PendingLoad] = []
        self._host_pinned: set[int] = set()  # nodes a load is about to read: keep on host
        self.offloaded_pages = 0

    @property
    def has_host_tier(self: RadixTree) -> bool:
        return self.host_allocator is not None

    # ---- device eviction -----------------------------------------------------------

    def _device_candidate(self: RadixTree, node: RadixNode) -> bool:
        return (
            node is not self.root
            and node.on_device
            and node.lock_ref == 0
            and not any(c.pages for c in node.children.values())
        )

    def evict(self: RadixTree, num_pages: int, bound: Any = None) -> int:
        """Free device pages of unlocked device leaves in policy order until ``num_pages``
        are freed. With a host tier, a node the policy wants kept is written back to host
        first and stays in the tree as host-only; otherwise it is dropped (with its
        host-only subtree). ``bound``: only evict nodes whose policy key is below it.
        Returns the number of device pages freed."""
        if num_pages <= 0:
            return 0
        key = self.policy.key
        lru = getattr(key, "__func__", None) is LRUPolicy.key  # key(n) is n.last_access
        if lru:
            heap = [(n.last_access, n.id, n) for n in self._device_candidates()]
        else:
            heap = [(key(n), n.id, n) for n in self._device_candidates()]
        heapq.heapify(heap)
        device = self._cands.device_set
        tiered = self.host_allocator is not None
        ps, root = self.page_size, self.root
        pages: list[int] = []  # freed in one call at the end
        freed = 0
        while heap and freed < num_pages:
            k, nid, node = heapq.heappop(heap)
            if bound is not None and not k < bound:
                break
            parent = node.parent
            assert parent is not None
            if tiered:
                freed += self._evict_device(node, pages)
            else:  # _evict_device + _drop_subtree: without a host tier every node has device
                # pages, so a candidate has no children
                n = len(node.pages)
                pages += node.pages
                node.pages = []
                del parent.children[node.key[:ps]]
                node.parent = None
                self._cached_pages -= n
                self._evictable_pages -= n
                self.version += 2
                freed += n
            device.pop(nid, None)
            children = parent.children
            if (  # _device_candidate(parent); it was none while `node` was its child
                parent is not root
                and parent.pages
                and not parent.loading
                and parent.lock_ref == 0
                and not (children and any(c.pages for c in children.values()))
            ):
                device[parent.id] = parent
                heapq.heappush(
                    heap, (parent.last_access if lru else key(parent), parent.id, parent)
                )
        self.allocator.free(pages)
        return freed

    def _device_candidates(self: RadixTree) -> Iterable[RadixNode]:
        """Device nodes `evict` may take (kept incrementally by `EvictionCandidates`)."""
        return self._cands.device()

    def _host_candidates(self: RadixTree) -> Iterable[RadixNode]:
        """Host-only nodes `evict_host` may take."""
        return self._cands.host()

    def _evict_device(self: RadixTree, node: RadixNode, freed: list[int]) -> int:
        """Take ``node``'s device pages (appended to ``freed``, for the caller to free)."""
        n = len(node.pages)
        self.version += 1
        if self.has_host_tier and not node.on_host and self.policy.wants_host_copy(node):
            self._offload(node)  # may evict host leaves (and refresh the candidates)
        freed += node.pages
        node.pages = []
        self._cands.mark(node)
        self._cands.mark(node.parent)
        self._cached_pages -= n
        self._evictable_pages -= n
        if not node.on_host:
            self._drop_subtree(node)
        return n

    def _offload(self: RadixTree, node: RadixNode) -> bool:
        """Copy ``node``'s device pages to fresh host pages (synchronously)."""
        host = self._alloc_host(len(node.pages))
        if host is None:
            return False
        node.offloading = True
        try:
            self.transfer.offload(TransferOp("offload", tuple(node.pages), tuple(host)))
        finally:
            node.offloading = False
        node.host_pages = host
        self._cands.mark(node)
        self._host_cached_pages += len(host)
        self.offloaded_pages += len(host)
        return True

    def _write_through(self: RadixTree, node: RadixNode) -> None:
        if not node.on_host and self.policy.wants_host_copy(node):
            self._offload(node)

    def _drop_subtree(self: RadixTree, node: RadixNode) -> None:
        """Remove ``node`` (no device pages left) and its host-only descendants."""
        parent = node.parent
        assert parent is not None and not node.pages and node.lock_ref == 0
        self.version += 1
        del parent.children[node.key[: self.page_size]]
        self._cands.mark(parent)
        stack = [node]
        while stack:
            n = stack.pop()
            self._cands.mark(n)
            assert not n.pages and n.lock_ref == 0, f"dropping a device node {n!r}"
            if n.host_pages:
                assert self.host_allocator is not None
                self.host_allocator.free(n.host_pages)
                self._host_cached_pages -= len(n.host_pages)
                n.host_pages = []
            stack.extend(n.children.values())
            n.children = {}
            n.parent = None

    # ---- host eviction -------------------------------------------------------------

    def _host_candidate(self: RadixTree, node: RadixNode) -> bool:
        return (
            node is not self.root
            and node.is_leaf
            and not node.pages
            and node.on_host
            and node.id not in self._host_pinned
        )

    def evict_host(self: RadixTree, num_pages: int) -> int:
        """Drop host-only leaves in policy order until ``num_pages`` host pages are free'd."""
        if num_pages <= 0 or self.host_allocator is None:
            return 0
        key = self.policy.key
        pinned = self._host_pinned
        heap = [(key(n), n.id, n) for n in self._host_candidates() if n.id not in pinned]
        heapq.heapify(heap)
        freed = 0
        while heap and freed < num_pages:
            _, _, node = heapq.heappop(heap)
            parent = node.parent
            assert parent is not None
            freed += len(node.host_pages)
            self._drop_subtree(node)
            if self._host_candidate(parent):
                heapq.heappush(heap, (key(parent), parent.id, parent))
        return freed

    def _alloc_host(self: RadixTree, n: int) -> list[int] | None:
        alloc = self.host_allocator
        if alloc is None or n > alloc.num_pages:
            return None
        if alloc.num_free < n:
            self.evict_host(n - alloc.num_free)
            if alloc.num_free < n:
                return None
        return alloc.alloc(n)

    # ---- loads ---------------------------------------------------------------------

    def start_load(
        self: RadixTree, nodes: list[RadixNode], bound: Any = None
    ) -> PendingLoad | None:
        """Allocate device pages for a chain of host-only nodes (parent to child, the first
        one's parent resident) and return the load order, or None when the device pool
        cannot supply the pages (evicting only nodes with policy key below ``bound``)."""
        if not nodes:
            return None
        first_parent = nodes[0].parent
        assert first_parent is not None
        assert first_parent is self.root or first_parent.on_device, "load below a non-resident node"
        for a, b in zip(nodes, nodes[1:], strict=False):
            assert b.parent is a
        assert all(n.on_host and not n.pages for n in nodes), "load of a non host-only node"
        need = sum(len(n.host_pages) for n in nodes)
        if need > self.allocator.num_pages:
            return None
        if self.allocator.num_free < need:
            # Device eviction may offload, and making host room must not drop the chain.
            guard = first_parent is not self.root
            if guard:
                self.lock(first_parent)
            self._host_pinned = {n.id for n in nodes}
            try:
                self.evict(need - self.allocator.num_free, bound)
            finally:
                self._host_pinned = set()
                if guard:
                    self.unlock(first_parent, quiet=True)
            if self.allocator.num_free < need:
                return None
        pages = self.allocator.alloc(need)
        host: list[int] = []
        i = 0
        self._cands.mark(first_parent)
        for n in nodes:
            n.pages = pages[i : i + len(n.host_pages)]
            i += len(n.host_pages)
            host.extend(n.host_pages)
            n.loading = True
            self._cands.mark(n)
        self._cached_pages += need
        self.version += 1
        pending = PendingLoad(TransferOp("load", tuple(pages), tuple(host)), list(nodes))
        self.inflight.append(pending)
        return pending

    def finish_load(self: RadixTree, pending: PendingLoad, ok: bool) -> None:
        """Mark a load done: its nodes become resident (``ok``) or go back to host-only,
        freeing the device pages (failed or cancelled before it started)."""
        self.inflight.remove(pending)
        self.version += 1
        self._cands.mark(pending.nodes[0].parent)
        for n in pending.nodes:
            assert n.loading and n.lock_ref == 0
            n.loading = False
            self._cands.mark(n)
            if ok:
                self._evictable_pages += len(n.pages)
            else:
                self.allocator.free(n.pages)
                self._cached_pages -= len(n.pages)
                n.pages = []
