"""A free list of fixed-size KV pages, identified by integer ids."""

from __future__ import annotations

import heapq
from collections.abc import Iterable

from agentrt.kvmanager.errors import OutOfPagesError


class PageAllocator:
    """Hands out page ids ``0 .. num_pages - 1``; the lowest free ids go first.

    ``alloc`` is all or nothing, ``free`` validates every id before releasing any, so a
    failed call leaves the allocator unchanged.
    """

    def __init__(self, num_pages: int) -> None:
        if num_pages < 0:
            raise ValueError(f"num_pages must be >= 0, got {num_pages}")
        self._num_pages = num_pages
        self._free_heap: list[int] = list(range(num_pages))
        self._is_free = bytearray(b"\x01") * num_pages
        self.frees = 0  # calls of `free` that returned pages (a change counter)

    @property
    def num_pages(self) -> int:
        return self._num_pages

    @property
    def num_free(self) -> int:
        return len(self._free_heap)

    @property
    def num_used(self) -> int:
        return self._num_pages - len(self._free_heap)

    def is_free(self, page: int) -> bool:
        """Whether ``page`` is a valid id that is currently free."""
        return 0 <= page < self._num_pages and bool(self._is_free[page])

    def first_unallocated(self, pages: list[int]) -> int | None:
        """The first of ``pages`` that is out of range or free, None if all are in use."""
        flags, n = self._is_free, self._num_pages
        for page in pages:
            if not 0 <= page < n or flags[page]:
                return page
        return None

    def alloc(self, n: int) -> list[int]:
        """Return ``n`` free page ids (lowest first), or raise ``OutOfPagesError``."""
        if n < 0:
            raise ValueError(f"cannot allocate a negative number of pages ({n})")
        if n > len(self._free_heap):
            raise OutOfPagesError(
                f"asked for {n} pages but only {len(self._free_heap)} of {self._num_pages} are free"
            )
        pages = [heapq.heappop(self._free_heap) for _ in range(n)]
        for page in pages:
            self._is_free[page] = 0
        return pages

    def free(self, pages: Iterable[int]) -> None:
        """Return ``pages`` to the free list; raise ``ValueError`` on a bad or free id."""
        pages = list(pages)
        if not pages:
            return
        repeats = len(pages) > 1 and len(set(pages)) != len(pages)
        if repeats or self.first_unallocated(pages) is not None:
            self._raise_bad_free(pages)
        is_free, heap = self._is_free, self._free_heap
        for page in pages:
            is_free[page] = 1
            heapq.heappush(heap, page)
        self.frees += 1

    def _raise_bad_free(self, pages: list[int]) -> None:
        """Name the first out-of-range, free or repeated id of ``pages``."""
        seen: set[int] = set()
        for page in pages:
            if not 0 <= page < self._num_pages:
                raise ValueError(f"page id {page} out of range [0, {self._num_pages})")
            if self._is_free[page] or page in seen:
                raise ValueError(f"double free of page {page}")
            seen.add(page)
        raise AssertionError("unreachable: no bad page found")

    def check_integrity(self) -> None:
        """Raise ``AssertionError`` if the free list and the free flags disagree."""
        free = set(self._free_heap)
        assert len(free) == len(self._free_heap), "a page is on the free list twice"
        for page in free:
            assert 0 <= page < self._num_pages, f"free list holds out-of-range page {page}"
        flagged = {p for p in range(self._num_pages) if self._is_free[p]}
        assert flagged == free, (
            f"free flags disagree with free list: flagged-only {sorted(flagged - free)}, "
            f"listed-only {sorted(free - flagged)}"
        )

    def __repr__(self) -> str:
        return f"PageAllocator(num_pages={self._num_pages}, num_free={self.num_free})"
