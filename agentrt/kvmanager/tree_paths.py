"""Radix-tree operations along a known path (a node a sequence holds), without comparing
the tokens again: what `match_prefix` / `insert` would do to that path, in O(depth)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from agentrt.kvmanager.radix_node import InsertResult

if TYPE_CHECKING:
    from agentrt.kvmanager.radix_node import RadixNode
    from agentrt.kvmanager.radix_tree import RadixTree


class PathsMixin:
    def _touch_path(self: RadixTree, node: RadixNode, now: int) -> tuple[int, list[int]]:
        """Set ``last_access = now`` on ``node`` and its ancestors (root excluded);
        returns the tokens the path spells and its device pages in root-to-node order."""
        path = self._path_to_root(node)
        pages: list[int] = []
        depth = 0
        for n in reversed(path):
            n.last_access = now
            pages.extend(n.pages)
            depth += len(n.key)
        return depth, pages

    def insert_below(
        self: RadixTree, start: RadixNode, tokens: Sequence[int], pages: Sequence[int]
    ) -> InsertResult:
        """``insert(path + tokens, path_pages + pages, start)`` where ``path`` is what the
        path from the root to ``start`` (the root or a locked node) spells and
        ``path_pages`` its device pages: the same tree, access times and ids, without
        reading the path's tokens or pages. The result counts from ``start``: its
        ``pages`` are the tree's pages for ``tokens`` and ``num_existing`` how many of
        ``tokens`` the tree already held."""
        self._check_page_count(tokens, pages)
        now = self._tick()
        root = self.root
        n: RadixNode | None = start
        while n is not root:
            if n is None:
                raise ValueError(f"{start!r} is not in this tree (evicted?)")
            n.last_access = now
            n = n.parent
        out, existing, node = self._insert_walk(start, tuple(tokens), pages, now)
        return InsertResult(pages=out, num_existing=existing, node=node)

    def touch_prefix(
        self: RadixTree, node: RadixNode, num_tokens: int, depth: int | None = None
    ) -> RadixNode:
        """``match_prefix(tokens[:num_tokens]).node`` where ``tokens`` is the path from
        the root to ``node`` (resident, locked or just inserted) and ``num_tokens`` a
        positive whole number of pages within it: one tick, the node holding the boundary
        split there, every node down to it touched. Returns the node ending at
        ``num_tokens``. ``depth``: the length of the path to ``node``, when the caller
        knows it."""
        ps = self.page_size
        root = self.root
        assert num_tokens > 0 and num_tokens % ps == 0
        if depth is None:
            depth = sum(len(n.key) for n in self._path_to_root(node))
        if num_tokens > depth:
            raise AssertionError(f"touch_prefix past the end of the path ({depth} < {num_tokens})")
        now = self._tick()
        n, end = node, depth  # the path to `n` spells tokens[:end]
        while end - len(n.key) >= num_tokens:
            end -= len(n.key)
            n = n.parent
        if end > num_tokens:  # the boundary is inside `n`
            n = self._split(n, (num_tokens - end + len(n.key)) // ps)
        target = n
        while n is not root:
            n.last_access = now
            n = n.parent
        return target

    def relock(self: RadixTree, old: RadixNode | None, new: RadixNode) -> None:
        """``lock(new)`` then ``unlock(old)`` (when ``old`` is not None), for a ``new``
        inserted below the locked ``old`` (``new`` itself or a descendant). ``old``'s path
        stays locked throughout, so only the nodes between them gain a lock; no lock
        count reaches zero. Falls back to the two plain calls otherwise."""
        root = self.root
        below: list[RadixNode] = []
        n: RadixNode | None = new
        while n is not None and n is not old and n is not root:
            below.append(n)
            n = n.parent
        if n is not (root if old is None else old):  # not below `old`: the long way
            self.lock(new)
            if old is not None:
                self.unlock(old)
            return
        if old is not None and old is not root and old.lock_ref <= 0:
            raise ValueError(f"relock from a node that is not locked: {old!r}")
        mark = self._cands.mark
        for n in below:
            if n.lock_ref == 0:
                mark(n)
                if not n.loading:
                    self._evictable_pages -= len(n.pages)
            n.lock_ref += 1
