"""Serving metrics from hand-computed request timings."""

from __future__ import annotations

import pytest

from agentrt.trace.metrics import RequestTiming, format_serving, serving_metrics, summary_ms


def test_metrics_from_known_timings():
    timings = [
        RequestTiming(arrival=0.0, token_times=[0.5, 0.6, 0.8], output_tokens=3),
        RequestTiming(arrival=1.0, token_times=[1.1], output_tokens=1),
        RequestTiming(arrival=2.0, failed=True),
    ]
    m = serving_metrics(timings, duration_s=2.0)
    assert m["completed"] == 2 and m["failed"] == 1
    assert m["output_throughput"] == pytest.approx(2.0)
    assert m["ttft_ms"]["mean"] == pytest.approx((500 + 100) / 2)
    assert m["tpot_ms"]["mean"] == pytest.approx(150.0)  # (0.8 - 0.5) / 2
    assert m["itl_ms"]["p50"] == pytest.approx(150.0)  # gaps 100 and 200 ms
    assert m["e2e_ms"]["p99"] == pytest.approx(800.0)


def test_percentiles_and_empty():
    assert summary_ms([]) == {"mean": 0.0, "p50": 0.0, "p99": 0.0}
    values = [i / 1000 for i in range(1, 101)]
    s = summary_ms(values)
    assert s["p50"] == pytest.approx(50.5) and s["p99"] == pytest.approx(99.0)


def test_side_by_side_table():
    one = serving_metrics([RequestTiming(0.0, [0.2, 0.3], 2)], 1.0)
    two = serving_metrics([RequestTiming(0.0, [0.1, 0.15], 2)], 0.5)
    text = format_serving({"lru": one, "kvflow": two}, baseline="lru")
    assert "Speedup over lru" in text and "2.00x" in text and "mean TTFT (ms)" in text
