"""The sim backend's token runs (a slice of a precomputed cycle) against the formula."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from agentrt.engine.cost_model.synthetic_tokens import STRIDE, SyntheticTokens


@given(
    span=st.one_of(st.integers(1, 40_000), st.sampled_from([STRIDE, 2 * STRIDE, 31_900])),
    first=st.integers(0, 200),
    h=st.integers(0, 2**32 - 1),
    start=st.integers(0, 100_000),
    n=st.integers(0, 500),
)
def test_a_run_is_the_tokens_position_by_position(span, first, h, start, n):
    tokens = SyntheticTokens(first, span)
    want = [tokens.token(h, p) for p in range(start, start + n)]
    assert tokens.run(h, start, n) == want
    assert all(first <= t < first + span for t in want)


def test_runs_longer_than_the_cycle_and_strides_not_invertible():
    for span in (STRIDE, 3 * STRIDE, 7, 10):
        tokens = SyntheticTokens(100, span)
        assert tokens.run(5, 3, 2 * span + 3) == [
            tokens.token(5, p) for p in range(3, 2 * span + 6)
        ]
