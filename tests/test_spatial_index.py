"""GridIndex agrees with an O(N^2) brute force on random points and radii."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentrt.scheduler.spatial_index import GridIndex, chebyshev

coords = st.floats(min_value=-50, max_value=50, allow_nan=False, allow_infinity=False)
points = st.lists(st.tuples(coords, coords), min_size=0, max_size=60)


@settings(max_examples=150, deadline=None)
@given(
    pts=points,
    queries=st.lists(
        st.tuples(st.tuples(coords, coords), st.floats(min_value=0, max_value=120)), max_size=8
    ),
    cell=st.floats(min_value=0.5, max_value=30),
    removed=st.sets(st.integers(min_value=0, max_value=59)),
)
def test_query_matches_brute_force(pts, queries, cell, removed):
    index = GridIndex(cell)
    for i, p in enumerate(pts):
        index.insert(i, p)
    live = {i: p for i, p in enumerate(pts) if i not in removed}
    for i in removed:
        if i < len(pts):
            index.remove(i)
    assert len(index) == len(live)
    for q, r in queries:
        got = sorted(k for k, _ in index.query(q, r))
        want = sorted(i for i, p in live.items() if chebyshev(p, q) <= r)
        assert got == want


def test_a_rounded_distance_one_cell_beyond_the_ring_is_found():
    # -1e-17 is in cell -1, yet 1 - (-1e-17) rounds to 1.0 <= radius: the point in cell 1
    # passes the distance test, so the query must look one ring further.
    for query, point in (((0, -1e-17), (0, 1)), ((1, 1), (1, -1e-300))):
        index = GridIndex(1.0)
        index.insert("p", point)
        assert index.query(query, 1) == [("p", point)]
        assert chebyshev(query, point) <= 1


def test_boundary_is_inclusive_and_metric_is_chebyshev():
    index = GridIndex(2.0)
    index.insert("a", (3.0, 3.0))  # Chebyshev 3 from the origin, Euclidean ~4.24
    assert [k for k, _ in index.query((0.0, 0.0), 3.0)] == ["a"]
    assert list(index.query((0.0, 0.0), 2.999)) == []


def test_errors():
    with pytest.raises(ValueError, match="cell_size"):
        GridIndex(0)
    index = GridIndex(1.0)
    index.insert(1, (0.0, 0.0))
    with pytest.raises(KeyError, match="already"):
        index.insert(1, (5.0, 5.0))
    with pytest.raises(KeyError, match="not in the index"):
        index.remove(2)
    assert index.remove(1) == (0.0, 0.0)
    assert len(index) == 0


def _ring_query(index: GridIndex, pos, radius):
    """The plain query: every cell of the ring (or every occupied cell when fewer), in
    order, each filtered exactly."""
    cs = index.cell_size
    cx, cy = math.floor(pos[0] / cs), math.floor(pos[1] / cs)
    ring = math.ceil(radius / cs)
    exact = (cs * 1024).is_integer() and all(
        type(c) is int for p in index._where.values() for c in p
    )
    if not (exact and type(pos[0]) is int and type(pos[1]) is int):
        ring += 1  # a rounded distance may pass one cell beyond
    cells = index._cells
    if (2 * ring + 1) ** 2 <= len(cells):
        keys = [
            (i, j) for i in range(cx - ring, cx + ring + 1) for j in range(cy - ring, cy + ring + 1)
        ]
    else:
        keys = [(i, j) for i, j in cells if abs(i - cx) <= ring and abs(j - cy) <= ring]
    return [
        (k, p)
        for c in keys
        for k, p in cells.get(c, {}).items()
        if abs(p[0] - pos[0]) <= radius and abs(p[1] - pos[1]) <= radius
    ]


ints = st.integers(min_value=-40, max_value=40)


@settings(max_examples=300, deadline=None)
@given(
    pts=st.lists(st.one_of(st.tuples(ints, ints), st.tuples(coords, coords)), max_size=80),
    queries=st.lists(
        st.tuples(
            st.one_of(st.tuples(ints, ints), st.tuples(coords, coords)),
            st.one_of(st.integers(min_value=0, max_value=30), st.floats(min_value=0, max_value=60)),
        ),
        max_size=10,
    ),
    cell=st.one_of(st.sampled_from([1.0, 4.0, 5.0, 20.0]), st.floats(min_value=0.5, max_value=30)),
)
def test_query_visits_cells_in_ring_order(pts, queries, cell):
    """The 3 x 3 and clipped paths return the plain ring scan's list, order included (the
    tracker merges clusters in that order)."""
    index = GridIndex(cell)
    for i, p in enumerate(pts):
        index.insert(i, p)
    for q, r in queries:
        assert index.query(q, r) == _ring_query(index, q, r)
    for p in pts:  # each point at the edge of a query square from every side
        for q in ((p[0] - cell, p[1]), (p[0] + cell, p[1] + cell / 3), (p[0], p[1] - cell / 2)):
            for r in (cell, cell / 2, cell / 3, 1.5 * cell):
                assert index.query(q, r) == _ring_query(index, q, r)
