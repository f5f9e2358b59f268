"""The typed seams between the radix tree, its device eviction and its host tier.

The tree's parts name what they need from each other here, so none imports another's
module to type it: `RadixTree` satisfies `TreeView` (for `PathLocks` and
`DeviceEviction`), `HostTier` satisfies `HostCopies` (for the tree and its eviction);
the engine's `Sequence` satisfies `PagedSequence` (for the manager).
"""

from __future__ import annotations

from typing import Protocol

from agentrt.kvmanager.candidates import EvictionCandidates
from agentrt.kvmanager.page_allocator import PageAllocator
from agentrt.kvmanager.policy import EvictionPolicy
from agentrt.kvmanager.radix_node import RadixNode


class HostCopies(Protocol):
    """What the tree and device eviction need from a host tier."""

    write_through: bool

    def keep_copy(self, node: RadixNode) -> None:
        """Give ``node`` (about to lose its device pages, or just inserted) a host copy if
        it has none and the policy wants one (synchronously; may drop host-only leaves)."""
        ...

    def free(self, pages: list[int]) -> None:
        """Take back host pages of nodes the tree dropped."""
        ...

    def check_integrity(self, nodes: list[RadixNode]) -> None:
        """Raise ``AssertionError`` naming the first broken host-tier invariant."""
        ...


class TreeView(Protocol):
    """The tree's shared state, as its locks and device eviction change it.

    ``cached_pages``: device pages held (loading nodes included); ``evictable_pages``:
    device pages of unlocked, resident nodes; ``version``: bumped by every change that can
    alter a lookup or an eviction; ``candidates`` must be marked after every change of a
    node's candidacy (see `candidates`)."""

    root: RadixNode
    page_size: int
    allocator: PageAllocator
    policy: EvictionPolicy
    candidates: EvictionCandidates
    host: HostCopies | None
    version: int
    cached_pages: int
    evictable_pages: int

    def device_candidates(self) -> list[RadixNode]: ...

    def nodes(self) -> list[RadixNode]: ...


class PagedSequence(Protocol):
    """What the manager needs from a sequence (the engine's `Sequence` fits)."""

    request_id: str
    agent_id: str | None
    prefix_len: int | None
    token_ids: list[int]
    num_computed_tokens: int
    num_cached_tokens: int
    num_device_cached_tokens: int  # of those, the ones on the device when first looked at
    block_table: list[int]
    num_tree_pages: int
    tree_node: object
    num_preemptions: int
