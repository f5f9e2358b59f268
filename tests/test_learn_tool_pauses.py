"""`ToolPauses` (per-tool pause learned from the gap to the next request) and the
`DelayStats` it keeps per tool."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentrt.learn import DelayStats, LearnError, ToolPauses


def teach(pauses: ToolPauses, tool: str, gaps: list[float], t0: float = 0.0) -> float:
    now = t0
    for gap in gaps:
        pauses.response("w", [tool], now)
        now += gap
        assert pauses.request("w", now) == pytest.approx(gap)
        now += 1.0
    return now


def test_unknown_tools_get_the_default_and_known_ones_their_learned_pause():
    pauses = ToolPauses(default_pause_s=5.0, min_samples=3, quantile=0.9)
    assert pauses.expected_pause(["search"]) == 5.0
    teach(pauses, "search", [2.0, 2.0])
    assert pauses.expected_pause(["search"]) == 5.0  # 2 samples < min_samples
    teach(pauses, "search", [2.0, 2.0, 2.0])
    assert pauses.expected_pause(["search"]) == 2.0
    assert pauses.expected_pause(["search", "compile"]) == 5.0  # max with the default


def test_a_high_quantile_covers_slow_outliers():
    pauses = ToolPauses(min_samples=3, quantile=0.9)
    teach(pauses, "run", [8.0, 1.0, 1.0, 8.0] + [1.0] * 6)
    assert pauses.tools["run"].ewma < 8.0
    assert pauses.pause("run") == 8.0  # the 9th of 10 sorted gaps
    assert pauses.tools["run"].quantile(0.5) == 1.0


def test_the_pause_is_clipped_to_max_pause():
    pauses = ToolPauses(max_pause_s=10.0, max_gap_s=100.0, min_samples=1)
    teach(pauses, "slow", [40.0])
    assert pauses.pause("slow") == 40.0
    assert pauses.expected_pause(["slow"]) == 10.0


def test_gaps_beyond_max_gap_are_not_learned_and_cancel_forgets():
    pauses = ToolPauses(max_gap_s=30.0, min_samples=1)
    pauses.response("w", ["t"], 0.0)
    assert pauses.request("w", 31.0) is None
    assert "t" not in pauses.tools
    pauses.response("w", ["t"], 40.0)
    assert pauses.cancel("w") and not pauses.cancel("w")
    assert pauses.request("w", 41.0) is None
    assert pauses.request("never", 42.0) is None


def test_tools_called_together_all_learn_the_gap():
    pauses = ToolPauses(min_samples=1)
    pauses.response("w", ["a", "b"], 0.0)
    pauses.request("w", 3.0)
    assert pauses.tools["a"].mean == 3.0 and pauses.tools["b"].mean == 3.0


def test_bounds_on_tools_and_pending_responses():
    pauses = ToolPauses(max_tools=1, max_pending=2, min_samples=1)
    pauses.response("w", ["a", "b"], 0.0)
    pauses.request("w", 1.0)
    assert list(pauses.tools) == ["a"]  # b keeps the default
    for i in range(3):
        pauses.response(f"v{i}", ["a"], 2.0)
    assert pauses.pending == 2
    assert pauses.request("v0", 3.0) is None  # the oldest was forgotten
    assert pauses.request("v2", 3.0) == 1.0


@pytest.mark.parametrize(
    "call",
    [
        lambda p: p.response("w", "search", 0.0),
        lambda p: p.response("w", [""], 0.0),
        lambda p: p.response("w", ["t"], math.nan),
        lambda p: p.expected_pause([3]),
        lambda p: ToolPauses(default_pause_s=10.0, max_pause_s=5.0),
        lambda p: ToolPauses(quantile=1.5),
        lambda p: ToolPauses(window=0),
    ],
)
def test_bad_input_is_a_one_line_error_and_others_go_on(call):
    pauses = ToolPauses(min_samples=1)
    pauses.response("other", ["t"], 0.0)
    with pytest.raises(LearnError) as info:
        call(pauses)
    assert "\n" not in str(info.value)
    assert pauses.request("other", 2.0) == 2.0


@settings(max_examples=200, deadline=None)
@given(
    samples=st.lists(st.floats(0, 1e6), min_size=1, max_size=50),
    window=st.integers(1, 10),
    q=st.floats(0, 1),
)
def test_delay_stats_match_a_direct_computation(samples, window, q):
    stats = DelayStats.of(samples, alpha=0.5, window=window)
    assert stats.count == len(samples)
    assert stats.mean == pytest.approx(sum(samples) / len(samples), rel=1e-9, abs=1e-6)
    ewma = samples[0]
    for x in samples[1:]:
        ewma = ewma + 0.5 * (x - ewma)
    assert stats.ewma == pytest.approx(ewma, rel=1e-9, abs=1e-6)
    recent = sorted(samples[-window:])
    value = stats.quantile(q)
    assert value in recent
    assert sum(x <= value for x in recent) >= q * len(recent)  # nearest rank
    assert sum(x < value for x in recent) < max(1, q * len(recent))
    assert DelayStats.from_dict(stats.to_dict()) == stats


def test_delay_stats_reject_bad_samples():
    stats = DelayStats()
    for bad in (-1.0, math.inf, math.nan, "1"):
        with pytest.raises(LearnError):
            stats.add(bad)
    assert stats.count == 0
