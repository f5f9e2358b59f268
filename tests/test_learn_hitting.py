"""Expected steps to each agent's next request in a learned chain (`learn/hitting.py`).

Held to an exact solver written here: the linear equations of conditional hitting times
solved in fractions, on random small chains with workflow ends."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentrt.learn import LearnError, expected_steps


def exact(counts: dict[str, dict[str, int]], ends: dict[str, int], source: str, target: str):
    """(P(hit), E[T | hit]) over an unbounded horizon, by Gauss-Jordan over Fractions."""
    agents = sorted({*counts, *(j for row in counts.values() for j in row), *ends})
    probs = {}
    for i in agents:
        total = sum(counts.get(i, {}).values()) + ends.get(i, 0)
        probs[i] = {j: Fraction(c, total) for j, c in counts.get(i, {}).items()} if total else {}
    # agents that can reach `target` in >= 1 step
    reach = {i for i in agents if target in probs[i]}
    grew = True
    while grew:
        grew = False
        for i in agents:
            if i not in reach and any(j in reach and j != target for j in probs[i]):
                reach.add(i)
                grew = True
    if source not in reach:
        return Fraction(0), None
    live = sorted(reach)

    def solve(rhs):  # x_i - sum_{j != target, j in live} P_ij x_j = rhs_i
        n = len(live)
        at = {a: k for k, a in enumerate(live)}
        m = [[Fraction(int(r == c)) for c in range(n)] + [rhs[live[r]]] for r in range(n)]
        for r, i in enumerate(live):
            for j, p in probs[i].items():
                if j != target and j in at:
                    m[r][at[j]] -= p
        for col in range(n):
            piv = next(r for r in range(col, n) if m[r][col] != 0)
            m[col], m[piv] = m[piv], m[col]
            m[col] = [x / m[col][col] for x in m[col]]
            for r in range(n):
                if r != col and m[r][col] != 0:
                    f = m[r][col]
                    m[r] = [a - f * b for a, b in zip(m[r], m[col], strict=True)]
        return {a: m[at[a]][n] for a in live}

    hit = solve({i: probs[i].get(target, Fraction(0)) for i in live})
    steps = solve(hit)  # g_i = h_i + sum_{j != t} P_ij g_j
    return hit[source], steps[source] / hit[source]


CHAINS = st.dictionaries(
    st.sampled_from("abcd"),
    st.dictionaries(st.sampled_from("abcd"), st.integers(1, 5), max_size=3),
    min_size=1,
)


@settings(max_examples=150, deadline=None)
@given(counts=CHAINS, ends=st.dictionaries(st.sampled_from("abcd"), st.integers(1, 3)))
def test_expected_steps_match_the_exact_solution(counts, ends):
    agents = sorted({*counts, *(j for row in counts.values() for j in row), *ends})
    probs = {}
    for i in agents:
        total = sum(counts.get(i, {}).values()) + ends.get(i, 0)
        probs[i] = {j: c / total for j, c in counts.get(i, {}).items()} if total else {}
    table = expected_steps(probs, horizon=3000, min_hit_prob=1e-6)
    assert set(table) == set(agents)
    for source in agents:
        assert set(table[source]) == set(agents)
        for target in agents:
            hit, steps = exact(counts, ends, source, target)
            if hit < Fraction(1, 10**5):
                assert table[source][target] == math.inf
            else:
                assert table[source][target] == pytest.approx(float(steps), abs=1e-5)


def test_a_deterministic_cycle_gives_whole_steps():
    probs = {"a": {"b": 1.0}, "b": {"c": 1.0}, "c": {"a": 0.75}}  # c ends a quarter
    table = expected_steps(probs)
    assert table["a"] == {"a": 3.0, "b": 1.0, "c": 2.0}
    assert table["b"] == {"a": 2.0, "b": 3.0, "c": 1.0}


def test_unreachable_and_unlikely_agents_are_infinitely_far():
    probs = {"a": {"b": 0.98, "c": 0.02}, "b": {}, "c": {}}
    table = expected_steps(probs, min_hit_prob=0.05)
    assert table["a"]["b"] == 1.0
    assert table["a"]["c"] == math.inf  # 2% < min_hit_prob
    assert table["b"]["a"] == math.inf
    assert table["a"]["a"] == math.inf


def test_the_horizon_bounds_the_paths_counted():
    chain = {str(i): {str(i + 1): 1.0} for i in range(10)}
    assert expected_steps(chain, horizon=10)["0"]["10"] == 10.0
    assert expected_steps(chain, horizon=9)["0"]["10"] == math.inf


@pytest.mark.parametrize(
    "kwargs, message",
    [({"horizon": 0}, "horizon"), ({"min_hit_prob": 0.0}, "min_hit_prob")],
)
def test_bad_settings_raise_one_line_errors(kwargs, message):
    with pytest.raises(LearnError, match=message) as info:
        expected_steps({"a": {}}, **kwargs)
    assert "\n" not in str(info.value)
