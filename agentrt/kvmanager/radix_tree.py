"""Radix tree of KV pages keyed by page-aligned token ids (the prefix cache)."""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from agentrt.kvmanager.page_allocator import PageAllocator
from agentrt.kvmanager.policy import EvictionPolicy, get_policy


class RadixNode:
    """One edge of the tree: ``key`` tokens whose KV lives in ``pages``.

    ``len(key) == len(pages) * page_size``; ``children`` maps each child's first page of
    tokens to the child. ``lock_ref`` counts the locks taken on this node or on any node
    below it. ``agents`` names the agents whose fixed prefix passes through the node.
    """

    __slots__ = ("id", "key", "pages", "parent", "children", "lock_ref", "last_access", "agents")

    def __init__(
        self,
        node_id: int,
        key: tuple[int, ...] = (),
        pages: list[int] | None = None,
        parent: RadixNode | None = None,
    ) -> None:
        self.id = node_id
        self.key = key
        self.pages: list[int] = pages if pages is not None else []
        self.parent = parent
        self.children: dict[tuple[int, ...], RadixNode] = {}
        self.lock_ref = 0
        self.last_access = 0
        self.agents: set[str] = set()

    @property
    def is_leaf(self) -> bool:
        return not self.children

    def __repr__(self) -> str:
        key = self.key if len(self.key) <= 8 else (*self.key[:8], "...")
        return (
            f"RadixNode(id={self.id}, key={key}, pages={self.pages}, "
            f"lock_ref={self.lock_ref}, last_access={self.last_access})"
        )


@dataclass(frozen=True, slots=True)
class MatchResult:
    """Pages of the longest cached prefix; ``node`` ends exactly at ``num_tokens``."""

    pages: list[int]
    num_tokens: int
    node: RadixNode


@dataclass(frozen=True, slots=True)
class InsertResult:
    """The tree's pages for the inserted tokens; ``node`` ends exactly at their end.

    Where ``pages[i]`` differs from the page the caller passed, the tree already held that
    position and the caller still owns (and must free) its own page.
    """

    pages: list[int]
    num_existing: int
    node: RadixNode


class RadixTree:
    """Prefix cache of KV pages over a ``PageAllocator``.

    Locks cover a node and all its ancestors *excluding the root*: the root is never
    evicted, holds no pages and its ``lock_ref`` stays 0. Every public operation advances a
    logical clock by one; the nodes it touches get that value as ``last_access``.

    The tree owns the pages it adopted (via ``insert``) and frees them to the allocator
    only on ``evict`` / ``reset``. It never frees a page it did not adopt.
    """

    def __init__(
        self,
        page_size: int,
        allocator: PageAllocator,
        policy: str | EvictionPolicy = "lru",
    ) -> None:
        if page_size < 1:
            raise ValueError(f"page_size must be >= 1, got {page_size}")
        self.page_size = page_size
        self.allocator = allocator
        self.policy = get_policy(policy)
        self._ids = itertools.count()
        self.root = RadixNode(next(self._ids))
        self._clock = 0
        self._cached_pages = 0
        self._evictable_pages = 0

    @property
    def cached_pages(self) -> int:
        """Pages held by the tree."""
        return self._cached_pages

    @property
    def evictable_pages(self) -> int:
        """Pages held by unlocked nodes (all of them can be freed by ``evict``)."""
        return self._evictable_pages

    @property
    def clock(self) -> int:
        return self._clock

    # ---- lookup and insertion ---------------------------------------------------------

    def match_prefix(self, tokens: Sequence[int]) -> MatchResult:
        """Longest cached prefix of ``tokens`` in whole pages (a partial tail is ignored).

        Splits a node if the match ends inside it, and touches every node on the path.
        """
        ps = self.page_size
        tokens = tuple(tokens[: len(tokens) // ps * ps])
        now = self._tick()
        node, pos, pages = self.root, 0, []
        while pos < len(tokens):
            child = node.children.get(tokens[pos : pos + ps])
            if child is None:
                break
            n = self._common_pages(child, tokens, pos)
            partial = n < len(child.pages)
            if partial:
                child = self._split(child, n)
            child.last_access = now
            pages.extend(child.pages)
            pos += len(child.key)
            node = child
            if partial:
                break
        return MatchResult(pages=pages, num_tokens=pos, node=node)

    def insert(self, tokens: Sequence[int], pages: Sequence[int]) -> InsertResult:
        """Cache ``tokens`` whose KV is in ``pages`` (one page per ``page_size`` tokens).

        The tree keeps its own page wherever it already has one and adopts the caller's
        pages for the remaining positions; see ``InsertResult``.
        """
        ps = self.page_size
        if len(tokens) != len(pages) * ps:
            raise ValueError(
                f"insert needs len(tokens) == len(pages) * page_size, got {len(tokens)} "
                f"tokens for {len(pages)} pages of size {ps}"
            )
        tokens = tuple(tokens)
        now = self._tick()
        node, pos, out = self.root, 0, []
        while pos < len(tokens):
            child = node.children.get(tokens[pos : pos + ps])
            if child is None:
                break
            n = self._common_pages(child, tokens, pos)
            if n < len(child.pages):
                child = self._split(child, n)
            child.last_access = now
            out.extend(child.pages)
            pos += len(child.key)
            node = child
        num_existing = pos
        if pos < len(tokens):
            node = self._add_leaf(node, tokens[pos:], list(pages[pos // ps :]))
            node.last_access = now
            out.extend(node.pages)
        return InsertResult(pages=out, num_existing=num_existing, node=node)

    # ---- locking ----------------------------------------------------------------------

    def lock(self, node: RadixNode) -> None:
        """Protect ``node`` and its ancestors from eviction (reference counted)."""
        for n in self._path_to_root(node):
            if n.lock_ref == 0:
                self._evictable_pages -= len(n.pages)
            n.lock_ref += 1

    def unlock(self, node: RadixNode) -> None:
        """Undo one ``lock(node)``; raise ``ValueError`` if it was not locked."""
        path = self._path_to_root(node)
        for n in path:
            if n.lock_ref <= 0:
                raise ValueError(f"unlock of a node that is not locked: {n!r}")
        for n in path:
            n.lock_ref -= 1
            if n.lock_ref == 0:
                self._evictable_pages += len(n.pages)

    # ---- eviction ---------------------------------------------------------------------

    def evict(self, num_pages: int) -> int:
        """Free whole unlocked leaves in policy order until ``num_pages`` pages are freed.

        A parent left as an unlocked leaf becomes a candidate too. Returns the number of
        pages freed, which is less than asked only when nothing evictable is left.
        """
        if num_pages <= 0:
            return 0
        heap: list[tuple[object, int, RadixNode]] = []
        for node in self._nodes():
            if node is not self.root and node.is_leaf and node.lock_ref == 0:
                heap.append((self.policy.key(node), node.id, node))
        heapq.heapify(heap)
        freed = 0
        while heap and freed < num_pages:
            _, _, node = heapq.heappop(heap)
            parent = node.parent
            assert parent is not None
            freed += self._remove_leaf(node)
            if parent is not self.root and parent.is_leaf and parent.lock_ref == 0:
                heapq.heappush(heap, (self.policy.key(parent), parent.id, parent))
        return freed

    def reset(self) -> None:
        """Free everything the tree holds; raise ``RuntimeError`` if anything is locked."""
        locked = [c for c in self.root.children.values() if c.lock_ref > 0]
        if locked:
            raise RuntimeError(f"cannot reset a radix tree with locked nodes: {locked}")
        pages = [p for node in self._nodes() for p in node.pages]
        for node in self._nodes():
            if node is not self.root:
                node.parent = None
        self.root.children.clear()
        self.allocator.free(pages)
        self._cached_pages = 0
        self._evictable_pages = 0

    # ---- checking and debugging -------------------------------------------------------

    def check_integrity(self) -> None:
        """Raise ``AssertionError`` naming the first broken invariant."""
        ps = self.page_size
        root = self.root
        assert root.parent is None and root.key == () and root.pages == [], (
            f"root must have no parent, key or pages: {root!r}"
        )
        assert root.lock_ref == 0, f"root lock_ref must stay 0, got {root.lock_ref}"
        seen: dict[int, RadixNode] = {}
        cached = evictable = 0
        for node in self._nodes():
            assert node.lock_ref >= 0, f"negative lock_ref on {node!r}"
            if node is not root:
                assert node.pages, f"non-root node without pages: {node!r}"
                assert len(node.key) == len(node.pages) * ps, (
                    f"key length {len(node.key)} != {len(node.pages)} pages * {ps} on {node!r}"
                )
                parent = node.parent
                assert parent is not None, f"non-root node without parent: {node!r}"
                assert parent.children.get(node.key[:ps]) is node, (
                    f"{node!r} is not its parent's child under its first page {node.key[:ps]}"
                )
            for first, child in node.children.items():
                assert child.parent is node, f"{child!r} has parent {child.parent!r}, not {node!r}"
                assert child.key[:ps] == first, (
                    f"{child!r} stored under key {first} but starts with {child.key[:ps]}"
                )
            if node is not root:
                below = sum(c.lock_ref for c in node.children.values())
                assert node.lock_ref >= below, (
                    f"lock_ref {node.lock_ref} < children's sum {below} on {node!r}"
                )
            for page in node.pages:
                assert page not in seen, f"page {page} held by both {seen[page]!r} and {node!r}"
                seen[page] = node
                assert 0 <= page < self.allocator.num_pages, f"page {page} out of range"
                assert not self.allocator.is_free(page), (
                    f"page {page} of {node!r} is free in the allocator"
                )
            cached += len(node.pages)
            if node.lock_ref == 0:
                evictable += len(node.pages)
        assert cached == self._cached_pages, (
            f"cached_pages counter {self._cached_pages} != recount {cached}"
        )
        assert evictable == self._evictable_pages, (
            f"evictable_pages counter {self._evictable_pages} != recount {evictable}"
        )

    def pretty(self) -> str:
        """Indented dump of the tree, one node per line."""
        lines = [f"root  cached={self._cached_pages} evictable={self._evictable_pages}"]

        def walk(node: RadixNode, depth: int) -> None:
            for child in node.children.values():
                lines.append("  " * depth + repr(child))
                walk(child, depth + 1)

        walk(self.root, 1)
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (
            f"RadixTree(page_size={self.page_size}, policy={self.policy.name!r}, "
            f"cached_pages={self._cached_pages}, evictable_pages={self._evictable_pages})"
        )

    # ---- internals --------------------------------------------------------------------

    def _tick(self) -> int:
        self._clock += 1
        return self._clock

    def _common_pages(self, node: RadixNode, tokens: tuple[int, ...], pos: int) -> int:
        """Number of leading pages of ``node.key`` equal to ``tokens`` from ``pos``."""
        ps = self.page_size
        n = 0
        for i in range(len(node.pages)):
            start = i * ps
            if node.key[start : start + ps] != tokens[pos + start : pos + start + ps]:
                break
            n += 1
        return n

    def _split(self, node: RadixNode, n: int) -> RadixNode:
        """Cut ``node`` after ``n`` pages; return the new upper part.

        ``node`` keeps its identity as the lower part, so handles (and locks) taken on it
        stay valid; the upper part inherits its lock count, access time and agents.
        """
        ps = self.page_size
        parent = node.parent
        assert parent is not None and 0 < n < len(node.pages)
        upper = RadixNode(next(self._ids), node.key[: n * ps], node.pages[:n], parent)
        upper.lock_ref = node.lock_ref
        upper.last_access = node.last_access
        upper.agents = set(node.agents)
        parent.children[upper.key[:ps]] = upper
        node.key = node.key[n * ps :]
        node.pages = node.pages[n:]
        node.parent = upper
        upper.children[node.key[:ps]] = node
        return upper

    def _add_leaf(self, parent: RadixNode, key: tuple[int, ...], pages: list[int]) -> RadixNode:
        for page in pages:
            if not 0 <= page < self.allocator.num_pages or self.allocator.is_free(page):
                raise ValueError(f"insert of page {page}, which is not allocated")
        node = RadixNode(next(self._ids), key, pages, parent)
        parent.children[key[: self.page_size]] = node
        self._cached_pages += len(pages)
        self._evictable_pages += len(pages)
        return node

    def _remove_leaf(self, node: RadixNode) -> int:
        parent = node.parent
        assert parent is not None and node.is_leaf and node.lock_ref == 0
        del parent.children[node.key[: self.page_size]]
        node.parent = None
        self.allocator.free(node.pages)
        self._cached_pages -= len(node.pages)
        self._evictable_pages -= len(node.pages)
        return len(node.pages)

    def _path_to_root(self, node: RadixNode) -> list[RadixNode]:
        """``node`` and its ancestors, root excluded; raise if ``node`` is not in this tree."""
        path = []
        n: RadixNode | None = node
        while n is not None and n is not self.root:
            path.append(n)
            n = n.parent
        if n is not self.root:
            raise ValueError(f"{node!r} is not in this tree (evicted?)")
        return path

    def _nodes(self) -> list[RadixNode]:
        """Every node, root first, parents before children."""
        out, stack = [], [self.root]
        while stack:
            node = stack.pop()
            out.append(node)
            stack.extend(node.children.values())
        return out
