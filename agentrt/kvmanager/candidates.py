"""The radix tree's eviction candidates, kept up to date instead of found by a full scan.

A device candidate is a non-root, resident, unlocked node with no child holding device
pages (`is_device_candidate`); a host candidate a non-root host-only leaf
(`is_host_candidate`). Every tree operation that can change a node's candidacy marks the
node (and, where its candidacy can change too, the parent) with `mark`, after the change.
Marked nodes are re-checked lazily, when an eviction asks; the sets then equal a scan
over every node (`check` verifies it), so the eviction order is unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable

from agentrt.kvmanager.radix_node import RadixNode


def is_device_candidate(node: RadixNode) -> bool:
    """Whether device eviction may take ``node`` now (the root's parent is None). The two
    hottest callers (`_refresh`, `DeviceEviction.evict`) inline it; the reference tests hold
    them to it."""
    children = node.children
    return (
        node.parent is not None
        and bool(node.pages)
        and not node.loading
        and node.lock_ref == 0
        and not (children and any(c.pages for c in children.values()))
    )


def is_host_candidate(node: RadixNode) -> bool:
    """Whether host eviction may drop ``node`` now (pinning is the host tier's filter)."""
    return (
        node.parent is not None and not node.children and not node.pages and bool(node.host_pages)
    )


class EvictionCandidates:
    """Device and host eviction candidates of one tree, by node id. ``tiered``: the tree
    has a host tier (without one no node has a host copy, so host candidacy is skipped)."""

    def __init__(self) -> None:
        self.tiered = False
        # The device candidates by id; `evict` updates it directly: an entry it sets or
        # removes must be what a refresh would find at that moment.
        self.device_set: dict[int, RadixNode] = {}
        self._host: dict[int, RadixNode] = {}
        self._marked: dict[int, RadixNode] = {}

    def mark(self, node: RadixNode | None) -> None:
        """``node``'s candidacy may have changed (None is ignored)."""
        if node is not None:
            self._marked[node.id] = node

    def clear(self) -> None:
        self.device_set.clear()
        self._host.clear()
        self._marked.clear()

    def _refresh(self) -> None:
        marked = self._marked
        if not marked:
            return
        device, host = self.device_set, self._host
        # is_device_candidate inlined: without it eviction takes ~2-9% more of the CPU of
        # the simulator-speed command (measured)
        for nid, node in marked.items():
            children = node.children
            if (
                node.parent is not None
                and node.pages
                and not node.loading
                and node.lock_ref == 0
                and not (children and any(c.pages for c in children.values()))
            ):
                device[nid] = node
            else:
                device.pop(nid, None)
        if self.tiered:
            for nid, node in marked.items():
                if is_host_candidate(node):
                    host[nid] = node
                else:
                    host.pop(nid, None)
        marked.clear()

    def device(self) -> list[RadixNode]:
        """Every device candidate now (any order)."""
        self._refresh()
        return list(self.device_set.values())

    def host(self) -> list[RadixNode]:
        """Every host candidate now (any order)."""
        self._refresh()
        return list(self._host.values())

    def check(self, nodes: Iterable[RadixNode]) -> None:
        """Raise ``AssertionError`` unless the sets equal a scan of ``nodes`` (the tree's)."""
        self._refresh()
        nodes = list(nodes)
        want_device = {n.id for n in nodes if is_device_candidate(n)}
        want_host = {n.id for n in nodes if is_host_candidate(n)}
        assert set(self.device_set) == want_device, (
            f"device candidates {sorted(self.device_set)} != scan {sorted(want_device)}"
        )
        assert set(self._host) == want_host, (
            f"host candidates {sorted(self._host)} != scan {sorted(want_host)}"
        )
