"""What the engine tells about pins and loads: the loader times its host loads, and the
pool reports each pin it takes back, which then leaves the server's pin budget.
Torch-free."""

from __future__ import annotations

import pytest
from test_pins_and_priority import Seq, _run

from agentrt.kvmanager import KVCacheManager, ManualTransfer, Prepared
from agentrt.kvmanager.pins import ShedPin
from agentrt.serve.agents import AgentTracker
from agentrt.serve.hints import RequestHints

PS = 4


class Clock:
    now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_loader_times_its_loads_on_the_managers_clock():
    clock, transfer = Clock(), ManualTransfer()
    kv = KVCacheManager(
        num_pages=4, page_size=PS, policy="hicache", num_host_pages=16,
        transfer=transfer, clock=clock,
    )  # fmt: skip
    assert kv.host_load_s_per_token() is None
    away = [1] * (2 * PS)
    _run(kv, "away", away)
    _run(kv, "other", [2] * (4 * PS))  # pushes `away` to the host tier
    back = Seq("back", [*away, 7])
    assert kv.prepare(back) is Prepared.LOADING  # its load starts at 100 s ...
    clock.now = 102.0
    transfer.finish()
    kv.poll()  # ... and is seen done at 102 s: 2 s for 8 tokens
    assert kv.stats.load_seconds == pytest.approx(2.0)
    assert kv.host_load_s_per_token() == pytest.approx(2.0 / (2 * PS))
    assert kv.prepare(back) is Prepared.READY
    kv.match(back)
    assert back.num_cached_tokens == len(away) and back.num_device_cached_tokens == 0
    kv.release(back)
    kv.check_integrity()


def test_the_pool_reports_each_pin_it_sheds_once():
    kv = KVCacheManager(num_pages=4, page_size=PS)
    _run(kv, "a", [1] * (2 * PS))
    _run(kv, "b", [2] * (2 * PS))
    kv.pins.pin("a", [1] * (2 * PS), rank=5.0)
    kv.pins.pin("b", [2] * (2 * PS), rank=9.0)
    _run(kv, "c", [3] * (2 * PS))  # needs b's pages: the highest rank gives way
    assert kv.pins.drain_shed() == [ShedPin("b", 9.0)]
    assert kv.pins.drain_shed() == []
    assert "a" in kv.pins


def _tracker(clock: Clock, pins: list, shed) -> AgentTracker:
    return AgentTracker(
        publish=lambda ste: None,
        block_size=4,
        pin=lambda key, tokens, rank: pins.append((key, rank)),
        unpin=lambda key: pins.append((key, None)),
        pin_budget_pages=24,  # room for two 48-token conversations
        engine_clock=clock,
        clock=clock,
        pool_pages=100,
        pins_shed=shed,
    )


def _turn(tracker: AgentTracker, clock: Clock, name: str):
    """One request of conversation `name`, then a pause on a tool: its pin, if any."""
    call = tracker.call_of(RequestHints(workflow_id=name), None)
    tracker.started(call)
    clock.now += 0.1
    tracker.finished(call, ["search"])
    return tracker.pause(call, ["search"], list(range(48)))


def test_a_pin_the_engine_shed_leaves_the_book_and_shrinks_the_budget_for_a_while():
    clock, pins, shed = Clock(), [], []

    def drain() -> list[ShedPin]:
        out = list(shed)
        shed.clear()
        return out

    tracker = _tracker(clock, pins, drain)
    book = tracker.pin_book
    tracker.measured(ttft_s=400.0, missed_tokens=400)  # 1 s a token: any pause pays a pin
    assert _turn(tracker, clock, "a") is not None and _turn(tracker, clock, "b") is not None
    assert _turn(tracker, clock, "c") is None  # over the budget
    shed.append(ShedPin("a", book.until("a") + 1.0))  # an older pin of `a`: not the one held
    assert _turn(tracker, clock, "c") is None
    assert "a" in book and book.budget_pages == 24
    shed.append(ShedPin("a", book.until("a")))  # the engine took a's pages back
    assert _turn(tracker, clock, "c") is None  # the pool could not hold two: nor can c
    assert "a" not in book and tracker.pins.shed_seen == 1
    assert book.budget_pages == 12 and book.pinned_pages == 12  # b's
    assert _turn(tracker, clock, "b") is not None  # b held until it came back: room again
    assert book.budget_pages == 24
    assert _turn(tracker, clock, "c") is not None
    assert book.keys() == ["b", "c"]


def test_workflows_seen_at_one_clock_reading_keep_the_order_they_were_seen_in():
    """The sim's clock stands still between steps: workflows that start together still
    queue in the order the server saw them (program-level first come, first served)."""
    clock = Clock()
    clock.now = 5.0
    tracker = _tracker(clock, [], list)
    calls = [tracker.call_of(RequestHints(workflow_id=f"wf-{i}"), [1, 2]) for i in range(3)]
    starts = [tracker.program_start(call) for call in calls]
    assert starts[0] == 5.0 and starts[0] < starts[1] < starts[2] < 5.0 + 1e-9
    assert tracker.program_start(calls[1]) == starts[1]  # a workflow keeps its start
    clock.now = 7.0
    later = tracker.call_of(RequestHints(workflow_id="wf-late"), [1, 2])
    assert tracker.program_start(later) == 7.0
