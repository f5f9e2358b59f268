"""Radix tree of KV pages keyed by page-aligned token ids (the prefix cache)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from agentrt.kvmanager.candidates import EvictionCandidates
from agentrt.kvmanager.page_allocator import PageAllocator
from agentrt.kvmanager.policy import EvictionPolicy, get_policy
from agentrt.kvmanager.radix_node import HostMatch, InsertResult, MatchResult, RadixNode
from agentrt.kvmanager.tiering import TieringMixin
from agentrt.kvmanager.transfer import KVTransfer, NullTransfer
from agentrt.kvmanager.tree_integrity import check_tree
from agentrt.kvmanager.tree_paths import PathsMixin

__all__ = ["HostMatch", "InsertResult", "MatchResult", "RadixNode", "RadixTree"]


class RadixTree(TieringMixin, PathsMixin):
    """Prefix cache of KV pages over a device ``PageAllocator`` (and optionally a host one).

    Locks cover a node and all its ancestors *excluding the root*: the root is never
    evicted, holds no pages and its ``lock_ref`` stays 0. Every public operation advances a
    logical clock by one; the nodes it touches get that value as ``last_access``.

    The tree owns the pages it adopted (via ``insert``) or allocated (host copies, loads)
    and frees them only on eviction, failed loads or ``reset``.

    Tiers (when ``host_allocator`` is given): device-resident nodes form a subtree that
    contains the root; everything else is host-only or loading. See ``TieringMixin``.
    """

    def __init__(
        self,
        page_size: int,
        allocator: PageAllocator,
        policy: str | EvictionPolicy = "lru",
        host_allocator: PageAllocator | None = None,
        transfer: KVTransfer | None = None,
        write_through: bool = False,
    ) -> None:
        if page_size < 1:
            raise ValueError(f"page_size must be >= 1, got {page_size}")
        self.page_size = page_size
        self.allocator = allocator
        self.host_allocator = host_allocator
        self.transfer: KVTransfer = transfer or NullTransfer()
        self.write_through = write_through and host_allocator is not None
        self.policy = get_policy(policy)
        self._ids = itertools.count()
        self.root = RadixNode(next(self._ids))
        self._clock = 0
        # Bumped by every change that can alter a lookup or an eviction: ticks (match,
        # insert), unlocks to zero, evictions, loads, reset. Equal versions => same tree.
        self.version = 0
        self._cached_pages = 0
        self._evictable_pages = 0
        self._host_cached_pages = 0
        self._cands = EvictionCandidates(self)
        self._init_tiering()

    @property
    def cached_pages(self) -> int:
        """Device pages held by the tree (loading nodes included)."""
        return self._cached_pages

    @property
    def evictable_pages(self) -> int:
        """Device pages held by unlocked, resident nodes."""
        return self._evictable_pages

    @property
    def host_cached_pages(self) -> int:
        return self._host_cached_pages

    @property
    def clock(self) -> int:
        return self._clock

    # ---- lookup and insertion ---------------------------------------------------------

    def match_prefix(self, tokens: Sequence[int]) -> MatchResult:
        """Longest *device-resident* prefix of ``tokens`` in whole pages.

        Splits a node if the match ends inside it, and touches every node on the path.
        """
        ps = self.page_size
        tokens = tuple(tokens[: len(tokens) // ps * ps])
        now = self._tick()
        node, pos, pages = self.root, 0, []
        while pos < len(tokens):
            child = node.children.get(tokens[pos : pos + ps])
            if child is None or not child.on_device:
                break
            n = self._common_pages(child, tokens, pos)
            partial = n < child.num_pages
            if partial:
                child = self._split(child, n)
            child.last_access = now
            pages.extend(child.pages)
            pos += len(child.key)
            node = child
            if partial:
                break
        return MatchResult(pages=pages, num_tokens=pos, node=node)

    def match_host(self, tokens: Sequence[int]) -> HostMatch:
        """Read-only probe: the device prefix of ``tokens``, then the non-device nodes
        (host-only or loading) that extend it. Nodes are reported whole even when the
        tokens diverge inside the last one."""
        ps = self.page_size
        tokens = tuple(tokens[: len(tokens) // ps * ps])
        node, pos = self.root, 0
        device_tokens = 0
        nodes: list[RadixNode] = []
        while pos < len(tokens):
            child = node.children.get(tokens[pos : pos + ps])
            if child is None:
                break
            n = self._common_pages(child, tokens, pos)
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

    def insert(
        self, tokens: Sequence[int], pages: Sequence[int], start: RadixNode | None = None
    ) -> InsertResult:
        """Cache ``tokens`` whose KV is in ``pages`` (one page per ``page_size`` tokens).

        The tree keeps its own device page wherever it already has one and adopts the
        caller's pages for the remaining positions (host-only nodes on the path get the
        caller's pages as their device copy); see ``InsertResult``.

        ``start``: a locked node whose path from the root spells a prefix of ``tokens``
        (e.g. the node a sequence holds); the walk resumes there instead of comparing
        that prefix again. Same result and access times as without it.
        """
        ps = self.page_size
        self._check_page_count(tokens, pages)
        now = self._tick()
        node, out = self.root, []
        base = 0  # tokens[:base] are the path to `start`, not compared again
        if start is not None and start is not self.root:
            base, out = self._touch_path(start, now)
            node = start
            assert tuple(tokens[base - len(start.key) : base]) == start.key, "start off path"
            pages = pages[base // ps :]
        tokens = tuple(tokens[base:]) if base else tuple(tokens)
        more, existing, node = self._insert_walk(node, tokens, pages, now)
        out.extend(more)
        return InsertResult(pages=out, num_existing=base + existing, node=node)

    def _insert_walk(
        self, node: RadixNode, tokens: tuple[int, ...], pages: Sequence[int], now: int
    ) -> tuple[list[int], int, RadixNode]:
        """`insert` below ``node`` (already touched): ``tokens`` and their ``pages``
        continue its path. Returns the tree's pages for them, how many of the tokens it
        already held and the node ending at the last page kept."""
        ps = self.page_size
        pos, out = 0, []
        num_existing = None
        while pos < len(tokens):
            child = node.children.get(tokens[pos : pos + ps])
            if child is None:
                break
            if child.loading:
                existing = pos if num_existing is None else num_existing
                return out, existing, node
            n = self._common_pages(child, tokens, pos)
            if n < child.num_pages:
                child = self._split(child, n)
            if not child.on_device:
                if num_existing is None:
                    num_existing = pos
                self._adopt(child, list(pages[pos // ps : pos // ps + n]))
            child.last_access = now
            out.extend(child.pages)
            pos += len(child.key)
            node = child
        if num_existing is None:
            num_existing = pos
        if pos < len(tokens):
            node = self._add_leaf(node, tokens[pos:], list(pages[pos // ps :]))
            node.last_access = now
            out.extend(node.pages)
            if self.write_through:
                self._write_through(node)
        return out, num_existing, node

    # ---- locking ----------------------------------------------------------------------

    def lock(self, node: RadixNode) -> None:
        """Protect ``node`` and its ancestors from eviction (reference counted)."""
        mark = self._cands.mark
        for n in self._path_to_root(node):
            if n.lock_ref == 0:
                mark(n)
                if not n.loading:
                    self._evictable_pages -= len(n.pages)
            n.lock_ref += 1

    def unlock(self, node: RadixNode, *, quiet: bool = False) -> None:
        """Undo one ``lock(node)``; raise ``ValueError`` if it was not locked.
        ``quiet``: the lock being undone was taken within the same operation (no
        ``version`` bump: the pair changed nothing)."""
        path = self._path_to_root(node)
        for n in path:
            if n.lock_ref <= 0:
                raise ValueError(f"unlock of a node that is not locked: {n!r}")
        freed = False
        for n in path:
            n.lock_ref -= 1
            if n.lock_ref == 0:
                self._cands.mark(n)
                if not n.loading:
                    self._evictable_pages += len(n.pages)
                    freed = True
        if freed and not quiet:
            self.version += 1

    # ---- reset and checking -------------------------------------------------------------

    def reset(self) -> None:
        """Free everything the tree holds; raise ``RuntimeError`` if anything is locked
        or loading."""
        busy = [n for n in self._nodes() if n.lock_ref > 0 or n.loading]
        if busy:
            raise RuntimeError(f"cannot reset a radix tree with locked or loading nodes: {busy}")
        nodes = self._nodes()
        pages = [p for node in nodes for p in node.pages]
        host = [p for node in nodes for p in node.host_pages]
        for node in nodes:
            if node is not self.root:
                node.parent = None
        self.root.children.clear()
        self._cands.clear()
        self.allocator.free(pages)
        if self.host_allocator is not None:
            self.host_allocator.free(host)
        self._cached_pages = self._evictable_pages = self._host_cached_pages = 0
        self.version += 1

    def check_integrity(self) -> None:
        """Raise ``AssertionError`` naming the first broken invariant (both tiers)."""
        check_tree(self)
        self._cands.check()

    def pretty(self) -> str:
        """Indented dump of the tree, one node per line."""
        lines = [
            f"root  cached={self._cached_pages} evictable={self._evictable_pages} "
            f"host={self._host_cached_pages}"
        ]

        def walk(node: RadixNode, depth: int) -> None:
            for child in node.children.values():
                lines.append("  " * depth + repr(child))
                walk(child, depth + 1)

        walk(self.root, 1)
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (
            f"RadixTree(page_size={self.page_size}, policy={self.policy.name!r}, "
            f"cached_pages={self._cached_pages}, evictable_pages={self._evictable_pages}, "
            f"host_cached_pages={self._host_cached_pages})"
        )

    # ---- internals --------------------------------------------------------------------

    def _tick(self) -> int:
        self._clock += 1
        self.version += 1
        return self._clock

    def _common_pages(self, node: RadixNode, tokens: tuple[int, ...], pos: int) -> int:
        """Number of leading pages of ``node.key`` equal to ``tokens`` from ``pos``."""
        key = node.key
        if tokens[pos : pos + len(key)] == key:  # the common case, compared in C
            return len(key) // self.page_size
        ps = self.page_size
        n = 0
        for i in range(node.num_pages):
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
        assert parent is not None and 0 < n < node.num_pages and not node.loading
        upper = RadixNode(next(self._ids), node.key[: n * ps], node.pages[:n], parent)
        upper.host_pages = node.host_pages[:n]
        upper.lock_ref = node.lock_ref
        upper.last_access = node.last_access
        upper.agents = set(node.agents)
        parent.children[upper.key[:ps]] = upper
        node.key = node.key[n * ps :]
        node.pages = node.pages[n:]
        node.host_pages = node.host_pages[n:]
        node.parent = upper
        upper.children[node.key[:ps]] = node
        self._cands.mark(upper)
        self._cands.mark(node)
        return upper

    def _check_page_count(self, tokens: Sequence[int], pages: Sequence[int]) -> None:
        if len(tokens) != len(pages) * self.page_size:
            raise ValueError(
                f"insert needs len(tokens) == len(pages) * page_size, got {len(tokens)} "
                f"tokens for {len(pages)} pages of size {self.page_size}"
            )

    def _check_allocated(self, pages: list[int]) -> None:
        page = self.allocator.first_unallocated(pages)
        if page is not None:
            raise ValueError(f"insert of page {page}, which is not allocated")

    def _add_leaf(self, parent: RadixNode, key: tuple[int, ...], pages: list[int]) -> RadixNode:
        self._check_allocated(pages)
        node = RadixNode(next(self._ids), key, pages, parent)
        parent.children[key[: self.page_size]] = node
        self._cands.mark(node)
        self._cands.mark(parent)
        self._cached_pages += len(pages)
        self._evictable_pages += len(pages)
        return node

    def _adopt(self, node: RadixNode, pages: list[int]) -> None:
        """Give a host-only node the caller's (recomputed) device pages."""
        self._check_allocated(pages)
        assert node.lock_ref == 0 and len(pages) == len(node.host_pages)
        node.pages = pages
        self._cands.mark(node)
        self._cands.mark(node.parent)
        self._cached_pages += len(pages)
        self._evictable_pages += len(pages)

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
