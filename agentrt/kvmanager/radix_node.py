"""Radix-tree nodes and the results of lookups, with the two-tier residency states."""

from __future__ import annotations

from dataclasses import dataclass


class RadixNode:
    """One edge of the tree: ``key`` tokens whose KV lives in ``pages`` and/or ``host_pages``.

    Device ``pages`` and ``host_pages`` are ``[]`` or one per ``page_size`` tokens of
    ``key``. ``loading``: ``pages`` allocated, a host->device copy in flight;
    ``offloading``: set only while a device->host copy runs. ``children``: by first page
    of tokens. ``lock_ref``: locks on this node or below it. ``agents``: the agents whose
    fixed prefix passes through it.
    """

    __slots__ = (
        "id",
        "key",
        "pages",
        "host_pages",
        "parent",
        "children",
        "lock_ref",
        "last_access",
        "agents",
        "loading",
        "offloading",
    )

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
        self.host_pages: list[int] = []
        self.parent = parent
        self.children: dict[tuple[int, ...], RadixNode] = {}
        self.lock_ref = 0
        self.last_access = 0
        self.agents: set[str] = set()
        self.loading = False
        self.offloading = False

    @property
    def is_leaf(self) -> bool:
        return not self.children

    @property
    def on_device(self) -> bool:
        """Device pages hold valid KV (allocated and not still loading)."""
        return bool(self.pages) and not self.loading

    @property
    def on_host(self) -> bool:
        return bool(self.host_pages)

    @property
    def tier(self) -> str:
        """One of ``device``, ``host``, ``both``, ``loading``, ``offloading`` (``root``)."""
        if self.loading:
            return "loading"
        if self.offloading:
            return "offloading"
        if self.pages and self.host_pages:
            return "both"
        if self.pages:
            return "device"
        if self.host_pages:
            return "host"
        return "root"

    @property
    def num_pages(self) -> int:
        return max(len(self.pages), len(self.host_pages))

    def __repr__(self) -> str:
        key = self.key if len(self.key) <= 8 else (*self.key[:8], "...")
        return (
            f"RadixNode(id={self.id}, key={key}, pages={self.pages}, host={self.host_pages}, "
            f"tier={self.tier}, lock_ref={self.lock_ref}, last_access={self.last_access})"
        )


@dataclass(frozen=True, slots=True)
class MatchResult:
    """Device pages of the longest cached prefix; ``node`` ends exactly at ``num_tokens``."""

    pages: list[int]
    num_tokens: int
    node: RadixNode


@dataclass(frozen=True, slots=True)
class InsertResult:
    """The tree's pages for the inserted tokens; ``node`` ends exactly at their end.

    Where ``pages[i]`` differs from the page the caller passed, the tree already held that
    position and the caller still owns (and must free) its own page. ``pages`` can be
    shorter than the input when the path runs into a node whose load is in flight: the
    caller keeps (and owns) its pages for the rest.
    """

    pages: list[int]
    num_existing: int
    node: RadixNode


@dataclass(frozen=True, slots=True)
class HostMatch:
    """What lies beyond the device prefix: ``nodes`` not on device along the tokens (in
    path order, host-only or loading), covering ``num_tokens`` more tokens."""

    device_tokens: int
    nodes: list[RadixNode]
    num_tokens: int

    @property
    def loading(self) -> bool:
        return any(n.loading for n in self.nodes)


def path_to_root(root: RadixNode, node: RadixNode) -> list[RadixNode]:
    """``node`` and its ancestors, ``root`` excluded; raise ``ValueError`` if ``node`` is
    not below ``root`` (evicted, or of another tree)."""
    path = []
    n: RadixNode | None = node
    while n is not None and n is not root:
        path.append(n)
        n = n.parent
    if n is not root:
        raise ValueError(f"{node!r} is not in this tree (evicted?)")
    return path
