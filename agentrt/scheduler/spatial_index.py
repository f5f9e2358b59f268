"""Uniform-grid spatial hash over 2-D points, with the Chebyshev (L-infinity) metric.

Chebyshev distance (``max(|dx|, |dy|)``): a grid agent moving ``V`` cells per step in
each axis moves at most ``V``. A query of radius ``r`` visits the cells around the point
(or every occupied cell when fewer), then filters exactly: its cost is bounded by the
points nearby, never by a scan of all pairs.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterator

Pos = tuple[float, float]
_SLACK = 1e-9  # relative: far above float rounding, far below any cell size


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
        # Integer points in cells of a multiple of 1/1024 get exact cells and distances
        # (a non-integer x / cell is at least 1/1024/cell from an integer, far above the
        # rounding, for grids under 2**20 cells). Otherwise a rounded distance may pass
        # for a point one cell beyond the ring.
        self._exact = (self.cell_size * 1024).is_integer()

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
        if type(pos[0]) is not int or type(pos[1]) is not int:
            self._exact = False

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
        if not (self._exact and type(x) is int and type(y) is int):
            ring += 1
        cells = self._cells
        get = cells.get
        if (2 * ring + 1) ** 2 > len(cells):
            buckets = [
                b for (i, j), b in cells.items() if abs(i - cx) <= ring and abs(j - cy) <= ring
            ]
        elif ring == 1 and radius + radius >= cs:  # the 3 x 3 cells (the square spans 2+)
            a, b, c, d, e, f = cx - 1, cx, cx + 1, cy - 1, cy, cy + 1
            buckets = [
                get((a, d)), get((a, e)), get((a, f)),
                get((b, d)), get((b, e)), get((b, f)),
                get((c, d)), get((c, e)), get((c, f)),
            ]  # fmt: skip
        else:  # the ring's cells that the square [x - r, x + r] touches, in the same order
            columns, rows = self._span(x, radius, cx, ring), self._span(y, radius, cy, ring)
            buckets = [get((i, j)) for i in columns for j in rows]
        for bucket in buckets:
            if bucket:
                for key, p in bucket.items():
                    if abs(p[0] - x) <= radius and abs(p[1] - y) <= radius:
                        out.append((key, p))
        return out

    def _span(self, x: float, radius: float, c: int, ring: int) -> range:
        """Cell indices along one axis that ``[x - radius, x + radius]`` touches, within
        the ring ``c - ring .. c + ring``. A point that passes the (rounded) distance test
        is within ``radius`` plus a few ulps of ``x``: the slack covers that, and a cell
        too many only costs a look."""
        reach = radius + (abs(x) + radius) * _SLACK
        cs = self.cell_size
        lo = max(c - ring, math.floor((x - reach) / cs))
        return range(lo, 1 + min(c + ring, math.floor((x + reach) / cs)))

    def items(self) -> Iterator[tuple[Hashable, Pos]]:
        for bucket in self._cells.values():
            yield from bucket.items()
