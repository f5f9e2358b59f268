"""Invariant checks of the two-tier radix tree (called by the tree's and the host tier's
``check_integrity``), and the tree's text dump."""

from __future__ import annotations

from collections.abc import Iterable

from agentrt.kvmanager.page_allocator import PageAllocator
from agentrt.kvmanager.radix_node import RadixNode
from agentrt.kvmanager.transfer import TransferOp


def check_nodes(
    root: RadixNode, nodes: list[RadixNode], ps: int, allocator: PageAllocator, tiered: bool
) -> tuple[int, int]:
    """Raise ``AssertionError`` naming the first broken structural or device-page
    invariant of ``nodes`` (every node of the tree, root first); return the recounted
    cached and evictable device pages."""
    assert root.parent is None and root.key == () and not root.pages and not root.host_pages, (
        f"root must have no parent, key or pages: {root!r}"
    )
    assert root.lock_ref == 0, f"root lock_ref must stay 0, got {root.lock_ref}"
    assert not root.loading and not root.offloading, "root cannot transfer"
    seen: dict[int, RadixNode] = {}
    cached = evictable = 0
    for node in nodes:
        assert node.lock_ref >= 0, f"negative lock_ref on {node!r}"
        assert not node.offloading, f"{node!r} left offloading"
        if node is not root:
            _check_node(root, node, ps, tiered)
        for first, child in node.children.items():
            assert child.parent is node, f"{child!r} has parent {child.parent!r}, not {node!r}"
            assert child.key[:ps] == first, (
                f"{child!r} stored under key {first} but starts with {child.key[:ps]}"
            )
        for page in node.pages:
            assert page not in seen, f"page {page} held by both {seen[page]!r} and {node!r}"
            seen[page] = node
            assert 0 <= page < allocator.num_pages, f"page {page} out of range"
            assert not allocator.is_free(page), f"page {page} of {node!r} is free in the allocator"
        cached += len(node.pages)
        if node.lock_ref == 0 and not node.loading:
            evictable += len(node.pages)
    return cached, evictable


def _check_node(root: RadixNode, node: RadixNode, ps: int, tiered: bool) -> None:
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
        assert parent is root or parent.pages, f"device node under host-only: {node!r}"
    if node.on_device:
        assert parent is root or parent.on_device, f"resident under loading: {node!r}"
    if node.lock_ref:
        assert node.on_device, f"locked node not resident: {node!r}"
    below = sum(c.lock_ref for c in node.children.values())
    assert node.lock_ref >= below, f"lock_ref {node.lock_ref} < children's sum {below} on {node!r}"
    if not tiered:
        assert node.pages and not node.loading, f"non-device node without host tier {node!r}"
        assert not node.host_pages, f"{node!r} has host pages but the tree has no host tier"


def check_host_pages(nodes: list[RadixNode], pool: PageAllocator) -> int:
    """Raise ``AssertionError`` unless every host page of ``nodes`` is held once and
    allocated in ``pool``; return how many there are."""
    seen: dict[int, RadixNode] = {}
    for node in nodes:
        for page in node.host_pages:
            assert page not in seen, f"host page {page} held twice ({node!r})"
            seen[page] = node
            assert not pool.is_free(page), f"host page {page} of {node!r} is free"
    return len(seen)


def check_loads(
    loads: Iterable[tuple[TransferOp, list[RadixNode]]], nodes: list[RadixNode]
) -> None:
    """Raise ``AssertionError`` unless the loading nodes are exactly those of the loads in
    flight, each in one load that still holds its pages (``loads``: (op, nodes) pairs)."""
    in_flight: set[int] = set()
    for op, chain in loads:
        pages = tuple(p for n in chain for p in n.pages)
        host = tuple(p for n in chain for p in n.host_pages)
        assert pages == op.device_pages, f"load {op} lost its pages"
        assert host == op.host_pages, f"load {op} lost its host pages"
        for n in chain:
            assert n.id not in in_flight, f"{n!r} in two loads"
            in_flight.add(n.id)
            assert n.parent is not None, f"loading node {n!r} was removed"
    loading = {n.id for n in nodes if n.loading}
    assert in_flight == loading, f"loading nodes {loading} != nodes of in-flight loads {in_flight}"


def dump(root: RadixNode, header: str) -> str:
    """Indented dump of the tree below ``root``, one node per line, after ``header``."""
    lines = [f"root  {header}"]

    def walk(node: RadixNode, depth: int) -> None:
        for child in node.children.values():
            lines.append("  " * depth + repr(child))
            walk(child, depth + 1)

    walk(root, 1)
    return "\n".join(lines)
