"""GridIndex agrees with an O(N^2) brute force on random points and radii."""

from __future__ import annotations

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
