"""Invariant checks of the two-tier radix tree (called by ``RadixTree.check_integrity``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from agentrt.kvmanager.radix_node import RadixNode
    from agentrt.kvmanager.radix_tree import RadixTree


def check_tree(tree: RadixTree) -> None:
    """Raise ``AssertionError`` naming the first broken invariant."""
    ps = tree.page_size
    root = tree.root
    assert root.parent is None and root.key == () and not root.pages and not root.host_pages, (
        f"root must have no parent, key or pages: {root!r}"
    )
    assert root.lock_ref == 0, f"root lock_ref must stay 0, got {root.lock_ref}"
    assert not root.loading and not root.offloading, "root cannot transfer"
    seen: dict[int, RadixNode] = {}
    seen_host: dict[int, RadixNode] = {}
    cached = evictable = host_cached = 0
    loading: set[int] = set()
    for node in tree._nodes():
        assert node.lock_ref >= 0, f"negative lock_ref on {node!r}"
        assert not node.offloading, f"{node!r} left offloading"
        if node is not root:
            _check_node(tree, node, ps)
        for first, child in node.children.items():
            assert child.parent is node, f"{child!r} has parent {child.parent!r}, not {node!r}"
            assert child.key[:ps] == first, (
                f"{child!r} stored under key {first} but starts with {child.key[:ps]}"
            )
        for page in node.pages:
            assert page not in seen, f"page {page} held by both {seen[page]!r} and {node!r}"
            seen[page] = node
            assert 0 <= page < tree.allocator.num_pages, f"page {page} out of range"
            assert not tree.allocator.is_free(page), (
                f"page {page} of {node!r} is free in the allocator"
            )
        for page in node.host_pages:
            host = tree.host_allocator
            assert host is not None, f"{node!r} has host pages but the tree has no host tier"
            assert page not in seen_host, f"host page {page} held twice ({node!r})"
            seen_host[page] = node
            assert not host.is_free(page), f"host page {page} of {node!r} is free"
        cached += len(node.pages)
        host_cached += len(node.host_pages)
        if node.lock_ref == 0 and not node.loading:
            evictable += len(node.pages)
        if node.loading:
            loading.add(node.id)
    assert cached == tree._cached_pages, (
        f"cached_pages counter {tree._cached_pages} != recount {cached}"
    )
    assert evictable == tree._evictable_pages, (
        f"evictable_pages counter {tree._evictable_pages} != recount {evictable}"
    )
    assert host_cached == tree._host_cached_pages, (
        f"host_cached_pages {tree._host_cached_pages} != recount {host_cached}"
    )
    in_flight: set[int] = set()
    for pending in tree.inflight:
        pages = [p for n in pending.nodes for p in n.pages]
        host = [p for n in pending.nodes for p in n.host_pages]
        assert tuple(pages) == pending.op.device_pages, f"load {pending.op} lost its pages"
        assert tuple(host) == pending.op.host_pages, f"load {pending.op} lost its host pages"
        for n in pending.nodes:
            assert n.id not in in_flight, f"{n!r} in two loads"
            in_flight.add(n.id)
            assert n.parent is not None, f"loading node {n!r} was removed"
    assert in_flight == loading, f"loading nodes {loading} != nodes of in-flight loads {in_flight}"


def _check_node(tree: RadixTree, node: RadixNode, ps: int) -> None:
    assert node.pages or node.host_pages, f"node on neither tier: {node!r}"
    for pages in (node.pages, node.host_pages):
        assert not pages or len(node.key) == len(pages) * ps, (
            f"key length {len(node.key)} != {len(pages)} pages * {ps} on {node!r}"
        )
    assert not node.loading or (node.pages and node.host_pages), f"bad loading {node!r}"
    parent = node.parent
    assert parent is not None, f"non-root node without parent: {node!r}"
    assert parent.children.get(node.key[:ps]) is node, (
        f"{node!r} is not its parent's child under its first page {node.key[:ps]}"
    )
    if node.pages:
        assert parent is tree.root or parent.pages, f"device node under host-only: {node!r}"
    if node.on_device:
        assert parent is tree.root or parent.on_device, f"resident under loading: {node!r}"
    if node.lock_ref:
        assert node.on_device, f"locked node not resident: {node!r}"
    below = sum(c.lock_ref for c in node.children.values())
    assert node.lock_ref >= below, f"lock_ref {node.lock_ref} < children's sum {below} on {node!r}"
    if tree.host_allocator is None:
        assert node.pages and not node.loading, f"non-device node without host tier {node!r}"
