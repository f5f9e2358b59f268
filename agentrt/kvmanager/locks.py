"""Locks on radix-tree paths: a locked node and its ancestors are never evicted.

Locks cover a node and all its ancestors *excluding the root* (whose ``lock_ref`` stays
0); ``lock_ref`` counts the locks taken on a node or below it. A node's device pages
count in ``tree.evictable_pages`` only while it is unlocked and resident.
"""

from __future__ import annotations

from agentrt.kvmanager.interfaces import TreeView
from agentrt.kvmanager.radix_node import RadixNode, path_to_root


class PathLocks:
    """The lock counts of ``tree`` (its ``locks``)."""

    def __init__(self, tree: TreeView) -> None:
        self.tree = tree

    def lock(self, node: RadixNode) -> None:
        """Protect ``node`` and its ancestors from eviction (reference counted)."""
        tree = self.tree
        mark = tree.candidates.mark
        for n in path_to_root(tree.root, node):
            if n.lock_ref == 0:
                mark(n)
                if not n.loading:
                    tree.evictable_pages -= len(n.pages)
            n.lock_ref += 1

    def unlock(self, node: RadixNode, *, quiet: bool = False) -> None:
        """Undo one ``lock(node)``; raise ``ValueError`` if it was not locked.
        ``quiet``: the lock being undone was taken within the same operation (no
        ``version`` bump: the pair changed nothing)."""
        tree = self.tree
        path = path_to_root(tree.root, node)
        for n in path:
            if n.lock_ref <= 0:
                raise ValueError(f"unlock of a node that is not locked: {n!r}")
        freed = False
        for n in path:
            n.lock_ref -= 1
            if n.lock_ref == 0:
                tree.candidates.mark(n)
                if not n.loading:
                    tree.evictable_pages += len(n.pages)
                    freed = True
        if freed and not quiet:
            tree.version += 1
