"""Uniform-grid spatial hash over 2-D points, with the Chebyshev (L-infinity) metric.

Simulations measure perception radius, speed and the dependency rules in one metric;
agentrt uses Chebyshev distance (``max(|dx|, |dy|)``: a grid agent moving ``V`` cells per
step in each axis moves at most ``V``). A query of radius ``r`` visits the
``(2 * ceil(r / cell) + 1) ** 2`` cells around the point, or every occupied cell when
that is fewer, then filters exactly, so its cost is bounded by the points nearby (or,
for huge radii, by the occupied cells), never by a scan of all pairs.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterator

Pos = tuple[float, float]


def chebyshev(p: Pos, q: Pos) -> float:
    """Chebyshev distance ``max(|px - qx|, |py - qy|)``."""
    return max(abs(p[0] - q[0]), abs(p[1] - q[1]))


class GridIndex:
    """Points keyed by id in square cells of side ``cell_size``.

    Each id is at one position at a time.
    """

    def __init__(self, cell_size: float) -> None:
        if not cell_size > 0:
            raise ValueError(f"cell_size must be > 0, got {cell_size}")
        self.cell_size = float(cell_size)
        self._cells: dict[tuple[int, int], dict[Hashable, Pos]] = {}
        self._where: dict[Hashable, Pos] = {}

    def __len__(self) -> int:
        return len(self._where)

    def __contains__(self, key: object) -> bool:
        return key in self._where

    def _cell(self, pos: Pos) -> tuple[int, int]:
        cs = self.cell_size
        return (math.floor(pos[0] / cs), math.floor(pos[1] / cs))

    def insert(self, key: Hashable, pos: Pos) -> None:
        if key in self._where:
            raise KeyError(f"{key!r} is already in the index at {self._where[key]}")
        self._where[key] = pos
        self._cells.setdefault(self._cell(pos), {})[key] = pos

    def remove(self, key: Hashable) -> Pos:
        """Remove ``key``; returns where it was."""
        pos = self._where.pop(key, None)
        if pos is None:
            raise KeyError(f"{key!r} is not in the index")
        c = self._cell(pos)
        cell = self._cells[c]
        del cell[key]
        if not cell:
            del self._cells[c]
        return pos

    def query(self, pos: Pos, radius: float) -> list[tuple[Hashable, Pos]]:
        """Every ``(key, position)`` with ``chebyshev(position, pos) <= radius``, cell by
        cell (a list: queries are many and small, a generator per query costs more)."""
        out: list[tuple[Hashable, Pos]] = []
        if radius < 0:
            return out
        cs = self.cell_size
        x, y = pos
        cx, cy = math.floor(x / cs), math.floor(y / cs)
        ring = math.ceil(radius / cs)
        cells = self._cells
        if (2 * ring + 1) ** 2 <= len(cells):
            get = cells.get
            rows = range(cy - ring, cy + ring + 1)
            buckets = [get((i, j)) for i in range(cx - ring, cx + ring + 1) for j in rows]
        else:
            buckets = [
                b for (i, j), b in cells.items() if abs(i - cx) <= ring and abs(j - cy) <= ring
            ]
        for bucket in buckets:
            if bucket:
                for key, p in bucket.items():
                    if abs(p[0] - x) <= radius and abs(p[1] - y) <= radius:
                        out.append((key, p))
        return out

    def items(self) -> Iterator[tuple[Hashable, Pos]]:
        for bucket in self._cells.values():
            yield from bucket.items()
