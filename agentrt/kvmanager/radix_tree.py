"""Radix tree of KV pages keyed by page-aligned token ids (the prefix cache)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from agentrt.kvmanager.candidates import EvictionCandidates
from agentrt.kvmanager.eviction import DeviceEviction
from agentrt.kvmanager.interfaces import HostCopies
from agentrt.kvmanager.locks import PathLocks
from agentrt.kvmanager.page_allocator import PageAllocator
from agentrt.kvmanager.policy import EvictionPolicy, get_policy
from agentrt.kvmanager.radix_node import InsertResult, MatchResult, RadixNode, path_to_root
from agentrt.kvmanager.tree_integrity import check_nodes, dump


class RadixTree:
    """Prefix cache of KV pages over a device ``PageAllocator``.

    Every public operation advances ``clock`` by one; the nodes it touches get that
    value as ``last_access``. The tree owns the pages it adopted (via ``insert``) or
    allocated (loads) and frees them only on eviction, failed loads or ``reset``. Its
    parts: ``locks`` (`PathLocks`), ``eviction`` (`DeviceEviction`), ``candidates``
    (`EvictionCandidates`) and, attached by a `HostTier`, ``host``; the counters
    ``cached_pages``, ``evictable_pages`` and ``version`` are described by `TreeView`.
    """

    def __init__(
        self, page_size: int, allocator: PageAllocator, policy: str | EvictionPolicy = "lru"
    ) -> None:
        if page_size < 1:
            raise ValueError(f"page_size must be >= 1, got {page_size}")
        self.page_size = page_size
        self.allocator = allocator
        self.policy = get_policy(policy)
        self.host: HostCopies | None = None
        self.copy_on_insert: HostCopies | None = None  # the host, with write-through
        self._ids = itertools.count()
        self.root = RadixNode(next(self._ids))
        self.clock = 0
        self.version = 0
        self.cached_pages = 0
        self.evictable_pages = 0
        self.candidates = EvictionCandidates()
        self.locks = PathLocks(self)
        self.eviction = DeviceEviction(self)

    def attach_host(self, host: HostCopies) -> None:
        """Give the (still empty) tree its host tier."""
        assert self.host is None and not self.root.children, "attach a host tier first"
        self.host = host
        self.copy_on_insert = host if host.write_through else None
        self.candidates.tiered = True

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
            n = self.common_pages(child, tokens, pos)
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

    def insert(self, tokens: Sequence[int], pages: Sequence[int]) -> InsertResult:
        """Cache ``tokens`` whose KV is in ``pages`` (one page per ``page_size`` tokens).

        The tree keeps its own device page wherever it already has one and adopts the
        caller's pages for the remaining positions (host-only nodes on the path get the
        caller's pages as their device copy); see ``InsertResult``.
        """
        return self.insert_below(self.root, tokens, pages)

    def insert_below(
        self, start: RadixNode, tokens: Sequence[int], pages: Sequence[int]
    ) -> InsertResult:
        """``insert(path + tokens, path_pages + pages)`` where ``path`` is what the path
        from the root to ``start`` (the root or a locked node) spells and ``path_pages``
        its device pages: the same tree, access times and ids, without reading the path's
        tokens or pages. The result counts from ``start``: its ``pages`` are the tree's
        pages for ``tokens`` and ``num_existing`` how many of ``tokens`` it already held."""
        if len(tokens) != len(pages) * self.page_size:
            raise ValueError(
                f"insert needs len(tokens) == len(pages) * page_size, got {len(tokens)} "
                f"tokens for {len(pages)} pages of size {self.page_size}"
            )
        now = self._tick()
        root = self.root
        n: RadixNode | None = start
        while n is not root:
            if n is None:
                raise ValueError(f"{start!r} is not in this tree (evicted?)")
            n.last_access = now
            n = n.parent
        ps = self.page_size
        node, tokens, pos, out = start, tuple(tokens), 0, []
        num_existing = None
        while pos < len(tokens):
            child = node.children.get(tokens[pos : pos + ps])
            if child is None:
                break
            if child.loading:  # the caller keeps its pages from here on
                existing = pos if num_existing is None else num_existing
                return InsertResult(pages=out, num_existing=existing, node=node)
            k = self.common_pages(child, tokens, pos)
            if k < child.num_pages:
                child = self._split(child, k)
            if not child.on_device:
                if num_existing is None:
                    num_existing = pos
                self._adopt(child, list(pages[pos // ps : pos // ps + k]))
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
            if self.copy_on_insert is not None:
                self.copy_on_insert.keep_copy(node)
        return InsertResult(pages=out, num_existing=num_existing, node=node)

    def touch_prefix(self, node: RadixNode, num_tokens: int, depth: int | None = None) -> RadixNode:
        """``match_prefix(tokens[:num_tokens]).node`` where ``tokens`` is the path from
        the root to ``node`` (resident, locked or just inserted) and ``num_tokens`` a
        positive whole number of pages within it: one tick, the node holding the boundary
        split there, every node down to it touched. Returns the node ending at
        ``num_tokens``. ``depth``: the length of the path to ``node``, when known."""
        ps = self.page_size
        assert num_tokens > 0 and num_tokens % ps == 0
        if depth is None:
            depth = sum(len(n.key) for n in path_to_root(self.root, node))
        if num_tokens > depth:
            raise AssertionError(f"touch_prefix past the end of the path ({depth} < {num_tokens})")
        now = self._tick()
        n, end = node, depth  # the path to `n` spells tokens[:end]
        while end - len(n.key) >= num_tokens:
            end -= len(n.key)
            n = n.parent
        if end > num_tokens:  # the boundary is inside `n`
            n = self._split(n, (num_tokens - end + len(n.key)) // ps)
        target, root = n, self.root
        while n is not root:
            n.last_access = now
            n = n.parent
        return target

    def device_candidates(self) -> list[RadixNode]:
        """The nodes device eviction may take now (kept by `EvictionCandidates`)."""
        return self.candidates.device()

    def host_candidates(self) -> list[RadixNode]:
        """The host-only leaves host eviction may drop now (pinning aside)."""
        return self.candidates.host()

    def reset(self) -> None:
        """Free everything the tree holds; raise ``RuntimeError`` if anything is locked
        or loading."""
        nodes = self.nodes()
        busy = [n for n in nodes if n.lock_ref > 0 or n.loading]
        if busy:
            raise RuntimeError(f"cannot reset a radix tree with locked or loading nodes: {busy}")
        pages = [p for node in nodes for p in node.pages]
        host = [p for node in nodes for p in node.host_pages]
        for node in nodes[1:]:
            node.parent = None
        self.root.children.clear()
        self.candidates.clear()
        self.allocator.free(pages)
        if self.host is not None:
            self.host.free(host)
        self.cached_pages = self.evictable_pages = 0
        self.version += 1

    def check_integrity(self) -> None:
        """Raise ``AssertionError`` naming the first broken invariant (both tiers)."""
        nodes = self.nodes()
        tiered = self.host is not None
        cached, evictable = check_nodes(self.root, nodes, self.page_size, self.allocator, tiered)
        assert cached == self.cached_pages, (
            f"cached_pages counter {self.cached_pages} != recount {cached}"
        )
        assert evictable == self.evictable_pages, (
            f"evictable_pages counter {self.evictable_pages} != recount {evictable}"
        )
        if self.host is not None:
            self.host.check_integrity(nodes)
        self.candidates.check(nodes)

    def pretty(self) -> str:
        """Indented dump of the tree, one node per line."""
        return dump(self.root, f"cached={self.cached_pages} evictable={self.evictable_pages}")

    def __repr__(self) -> str:
        return (
            f"RadixTree(page_size={self.page_size}, policy={self.policy.name!r}, "
            f"cached_pages={self.cached_pages}, evictable_pages={self.evictable_pages})"
        )

    def nodes(self) -> list[RadixNode]:
        """Every node, root first, parents before children."""
        out, stack = [], [self.root]
        while stack:
            node = stack.pop()
            out.append(node)
            stack.extend(node.children.values())
        return out

    def _tick(self) -> int:
        self.clock += 1
        self.version += 1
        return self.clock

    def common_pages(self, node: RadixNode, tokens: tuple[int, ...], pos: int) -> int:
        """Number of leading pages of ``node.key`` equal to ``tokens`` from ``pos``."""
        key = node.key
        if tokens[pos : pos + len(key)] == key:  # the common case, compared in C
            return len(key) // self.page_size
        ps = self.page_size
        n = 0
        for i in range(node.num_pages):
            start = i * ps
            if key[start : start + ps] != tokens[pos + start : pos + start + ps]:
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
        self.candidates.mark(upper)
        self.candidates.mark(node)
        return upper

    def _check_allocated(self, pages: list[int]) -> None:
        page = self.allocator.first_unallocated(pages)
        if page is not None:
            raise ValueError(f"insert of page {page}, which is not allocated")

    def _add_leaf(self, parent: RadixNode, key: tuple[int, ...], pages: list[int]) -> RadixNode:
        self._check_allocated(pages)
        node = RadixNode(next(self._ids), key, pages, parent)
        parent.children[key[: self.page_size]] = node
        self.candidates.mark(node)
        self.candidates.mark(parent)
        self.cached_pages += len(pages)
        self.evictable_pages += len(pages)
        return node

    def _adopt(self, node: RadixNode, pages: list[int]) -> None:
        """Give a host-only node the caller's (recomputed) device pages."""
        self._check_allocated(pages)
        assert node.lock_ref == 0 and len(pages) == len(node.host_pages)
        node.pages = pages
        self.candidates.mark(node)
        self.candidates.mark(node.parent)
        self.cached_pages += len(pages)
        self.evictable_pages += len(pages)
