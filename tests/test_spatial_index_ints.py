"""GridIndex's integer fast path (fewer cells visited) returns the plain path's list."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from agentrt.scheduler.spatial_index import GridIndex, chebyshev

ints = st.integers(min_value=-60, max_value=60)


@settings(max_examples=200, deadline=None)
@given(
    pts=st.lists(st.tuples(ints, ints), max_size=80),
    queries=st.lists(
        st.tuples(st.tuples(ints, ints), st.floats(min_value=0, max_value=40)), max_size=8
    ),
    cell=st.one_of(st.integers(min_value=1, max_value=25), st.floats(min_value=0.5, max_value=25)),
    removed=st.sets(st.integers(min_value=0, max_value=79)),
)
def test_int_path_matches_plain_path(
    pts: list[tuple[int, int]],
    queries: list[tuple[tuple[int, int], float]],
    cell: float,
    removed: set[int],
) -> None:
    fast, plain = GridIndex(cell), GridIndex(cell)
    for i, p in enumerate(pts):
        fast.insert(i, p)
        plain.insert(i, p)
    for i in removed:
        if i < len(pts):
            fast.remove(i)
            plain.remove(i)
    assert fast._int_points
    plain._int_points = False  # the general path
    for q, r in queries:
        for radius in (r, float(round(r)), round(r)):
            got = fast.query(q, radius)
            assert got == plain.query(q, radius)  # same pairs, same order
            want = {i for i, p in enumerate(pts) if i not in removed and chebyshev(p, q) <= radius}
            assert {k for k, _ in got} == want


def test_a_float_point_turns_the_int_path_off() -> None:
    index = GridIndex(4.0)
    index.insert(1, (0, 0))
    assert index._int_points
    index.insert(2, (0.5, 0))
    assert not index._int_points
    assert sorted(k for k, _ in index.query((0, 0), 0.5)) == [1, 2]
