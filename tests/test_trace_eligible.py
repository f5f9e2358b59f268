"""`EligibleCalls`: when each replayed call may be submitted, in both dispatch modes."""

from __future__ import annotations

from agentrt.trace import CallRecord
from agentrt.trace.eligible import EligibleCalls


def _call(call_id: str, arrival: float, parents=(), think=0.0) -> CallRecord:
    return CallRecord(
        call_id=call_id,
        workflow_id="w",
        agent_id="a",
        step=len(parents),
        parents=list(parents),
        think_time_s=think,
        arrival_s=arrival,
        prompt_len=8,
        output_len=1,
    )


RECORDS = [
    _call("a", 10.0),
    _call("b", 12.0),
    _call("c", 14.0, parents=["a", "b"], think=4.0),
    _call("d", 10.0, parents=["elsewhere"]),
]


def test_timestamp_dispatch_uses_arrivals_relative_to_the_first_over_speed():
    calls = EligibleCalls(RECORDS, "timestamp", speed=2.0)
    assert calls.next_due() == 0.0
    # ties keep the records' order; nothing is due before its time
    assert calls.take_due(0.5) == [(0.0, "a"), (0.0, "d")]
    assert calls.take_due(2.0) == [(1.0, "b"), (2.0, "c")]
    assert not calls


def test_dependency_dispatch_waits_for_the_last_parent_plus_think_time():
    calls = EligibleCalls(RECORDS, "dependency", speed=2.0)
    # "d"'s parent is not among the records: it is not waited for
    assert calls.take_due(100.0) == [(0.0, "a"), (0.0, "d"), (1.0, "b")]
    calls.finished("a", 3.0)
    assert not calls  # "c" still waits for "b"
    calls.finished("b", 5.0)
    assert calls.next_due() == 7.0  # 5.0 + 4.0 / 2
    assert calls.take_due(6.9) == []
    assert calls.take_due(7.0) == [(7.0, "c")]
