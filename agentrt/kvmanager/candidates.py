"""The radix tree's eviction candidates, kept up to date instead of found by a full scan.

A device candidate is a non-root, resident (device pages, not loading), unlocked node
with no child holding device pages; a host candidate is a non-root host-only leaf. Every
tree operation that can change a node's candidacy (lock counts crossing zero, device or
host pages gained or lost, children added or removed, loads) marks the node (and, where
its parent's candidacy can change too, the parent) with `mark`, after the change (a
refresh between a mark and its change would lose it). The sets are brought up
to date lazily, when an eviction asks for them: each marked node is re-checked once.

The candidates handed out are exactly those a scan over every node would find, so the
eviction order (policy key, then node id) is unchanged; `check` verifies that.

For policies whose keys only grow (`EvictionPolicy.keys_only_grow`, e.g. LRU) the device
candidates also live in a heap kept between evictions (`pop_device`), instead of one
heapified per eviction: a node is pushed when it becomes a candidate; an entry whose node
is no longer a candidate is dropped when it reaches the top, one whose key grew since is
pushed again with its key. Every candidate has an entry with a key at most its current
key, so the first valid top is the smallest (key, id) of all candidates: the order of
the per-eviction heap.
"""

from __future__ import annotations

import heapq
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agentrt.kvmanager.radix_node import RadixNode
    from agentrt.kvmanager.radix_tree import RadixTree


def is_device_candidate(root: RadixNode, node: RadixNode) -> bool:
    return (
        node is not root
        and node.parent is not None
        and bool(node.pages)
        and not node.loading
        and node.lock_ref == 0
        and not any(c.pages for c in node.children.values())
    )


def is_host_candidate(root: RadixNode, node: RadixNode) -> bool:
    return (
        node is not root
        and node.parent is not None
        and not node.children
        and not node.pages
        and bool(node.host_pages)
    )


class EvictionCandidates:
    """Device and host eviction candidates of one tree, by node id."""

    def __init__(self, tree: RadixTree) -> None:
        self.tree = tree
        self._device: dict[int, RadixNode] = {}
        self._host: dict[int, RadixNode] = {}
        self._marked: dict[int, RadixNode] = {}
        self.lazy = tree.policy.keys_only_grow  # keep `_heap` between evictions
        self._heap: list[tuple[Any, int, RadixNode]] = []

    def mark(self, node: RadixNode | None) -> None:
        """``node``'s candidacy may have changed (None and the root are ignored)."""
        if node is not None:
            self._marked[node.id] = node

    def clear(self) -> None:
        self._device.clear()
        self._host.clear()
        self._marked.clear()
        self._heap.clear()

    def _refresh(self) -> None:
        marked = self._marked
        if not marked:
            return
        device, host = self._device, self._host
        heap, key = (self._heap, self.tree.policy.key) if self.lazy else (None, None)
        # is_device_candidate, inlined (the root's parent is None): this runs per mark
        for nid, node in marked.items():
            children = node.children
            if (
                node.parent is not None
                and node.pages
                and not node.loading
                and node.lock_ref == 0
                and not (children and any(c.pages for c in children.values()))
            ):
                if heap is not None and nid not in device:
                    heapq.heappush(heap, (key(node), nid, node))  # type: ignore[misc]
                device[nid] = node
            else:
                device.pop(nid, None)
        if self.tree.host_allocator is not None:  # without a host tier no node has a host copy
            root = self.tree.root
            for nid, node in marked.items():
                if is_host_candidate(root, node):
                    host[nid] = node
                else:
                    host.pop(nid, None)
        marked.clear()

    def device(self) -> list[RadixNode]:
        """Every device candidate now (any order)."""
        self._refresh()
        return list(self._device.values())

    def start_eviction(self) -> None:
        """Bring the candidates (and the lazy heap) up to date before `pop_device`."""
        self._refresh()
        if len(self._heap) > 2 * len(self._device) + 64:  # mostly stale entries: rebuild
            key = self.tree.policy.key
            self._heap = [(key(n), nid, n) for nid, n in self._device.items()]
            heapq.heapify(self._heap)

    def pop_device(self, bound: Any = None) -> RadixNode | None:
        """(Lazy heap, after `start_eviction`) remove and return the candidate with the
        smallest (key, id), None if there is none or its key is not below ``bound``."""
        heap, key, root = self._heap, self.tree.policy.key, self.tree.root
        while heap:
            k, nid, node = heap[0]
            if not is_device_candidate(root, node):
                heapq.heappop(heap)  # evicted, locked or grown a child since
                continue
            now = key(node)
            if now != k:
                heapq.heapreplace(heap, (now, nid, node))  # touched since: a larger key
                continue
            if bound is not None and not k < bound:
                return None
            heapq.heappop(heap)
            return node
        return None

    def push_device(self, node: RadixNode) -> None:
        """(Lazy heap) ``node`` just became a candidate during an eviction."""
        heapq.heappush(self._heap, (self.tree.policy.key(node), node.id, node))

    def host(self) -> list[RadixNode]:
        """Every host candidate now (any order; pinning is the caller's filter)."""
        self._refresh()
        return list(self._host.values())

    def check(self) -> None:
        """Raise ``AssertionError`` unless the sets equal a full scan of the tree."""
        tree = self.tree
        self._refresh()
        nodes = tree._nodes()
        want_device = {n.id for n in nodes if is_device_candidate(tree.root, n)}
        want_host = {n.id for n in nodes if is_host_candidate(tree.root, n)}
        assert set(self._device) == want_device, (
            f"device candidates {sorted(self._device)} != scan {sorted(want_device)}"
        )
        assert set(self._host) == want_host, (
            f"host candidates {sorted(self._host)} != scan {sorted(want_host)}"
        )
        if self.lazy:  # every candidate has an entry with a key at most its own
            key = tree.policy.key
            lowest: dict[int, Any] = {}
            for k, nid, _ in self._heap:
                if nid not in lowest or k < lowest[nid]:
                    lowest[nid] = k
            for nid, node in self._device.items():
                assert nid in lowest and lowest[nid] <= key(node), (
                    f"candidate {nid} has no heap entry at or below its key"
                )
