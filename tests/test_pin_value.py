"""Whether a tool pause is worth a pin and for how long (`learn.pin_value`), and the
server's tracker acting on it: a conversation cheap to recompute, or expected back late
relative to the pool share it holds, is not pinned; the pin's end is its shedding rank."""

from __future__ import annotations

import math

import pytest

from agentrt.learn import LearnError, ToolPauses
from agentrt.learn.pin_value import TTL_MARGIN, ReloadRate, pin_ttl
from agentrt.serve.agents import AgentTracker
from agentrt.serve.hints import RequestHints


def test_no_ttl_pays_when_the_reload_is_cheap_for_the_share_held():
    assert pin_ttl(reload_s=0.01, share=0.5, samples=[1.0, 2.0]) is None
    assert pin_ttl(reload_s=0.0, share=0.1, samples=[0.0]) is None


def test_an_expensive_reload_is_pinned_until_the_last_return():
    assert pin_ttl(reload_s=10.0, share=0.1, samples=[0.5, 1.0, 3.0]) == 3.0 * TTL_MARGIN


def test_the_ttl_stops_short_of_a_long_tail():
    samples = [0.1] * 8 + [5.0] * 2
    # gain(0.1) = 1 * 0.8 - 0.5 * 0.1 = 0.75 > gain(5.0) = 1 - 0.5 * 1.08 = 0.46
    assert pin_ttl(reload_s=1.0, share=0.5, samples=samples) == pytest.approx(0.1 * TTL_MARGIN)
    # a pool share ten times smaller makes waiting out the tail pay
    assert pin_ttl(reload_s=1.0, share=0.05, samples=samples) == pytest.approx(5.0 * TTL_MARGIN)


def test_pins_already_held_make_the_next_one_dearer_and_a_full_pool_pins_nothing():
    samples = [0.5, 4.0]
    # rate 0.1 / 0.9: waiting out the long pause pays (0.75 > 0.44); with 70% pinned,
    # rate 0.1 / 0.2 = 0.5: only the short one does (0.25 > -0.125)
    assert pin_ttl(1.0, 0.1, samples) == pytest.approx(4.0 * TTL_MARGIN)
    assert pin_ttl(1.0, 0.1, samples, pinned_share=0.7) == pytest.approx(0.5 * TTL_MARGIN)
    assert pin_ttl(100.0, 0.1, samples, pinned_share=0.9) is None  # no room left for it


@pytest.mark.parametrize(
    "args",
    [(-1.0, 0.5, [1.0]), (math.nan, 0.5, [1.0]), (1.0, 0.0, [1.0]), (1.0, 1.5, [1.0]),
     (1.0, 0.5, []), (1.0, 0.5, [-1.0]), (1.0, 0.5, [math.inf])],
)  # fmt: skip
def test_bad_arguments_are_one_line_errors(args):
    with pytest.raises(LearnError) as info:
        pin_ttl(*args)
    assert "\n" not in str(info.value)


def test_reload_rate_is_a_ratio_of_sums_over_requests_that_computed_enough():
    rate = ReloadRate(default_s=1e-3, window=2, min_tokens=16)
    assert rate.per_token_s == 1e-3
    rate.add(0.5, 8)  # too few tokens to say anything
    rate.add(math.nan, 100)
    assert rate.per_token_s == 1e-3
    rate.add(1.0, 100)
    rate.add(3.0, 100)
    assert rate.per_token_s == pytest.approx(4.0 / 200)
    rate.add(1.0, 300)  # the window keeps the last two
    assert rate.reload_s(10) == pytest.approx(10 * 4.0 / 400)


def test_samples_are_those_of_the_slowest_tool_called():
    pauses = ToolPauses(default_pause_s=5.0, max_pause_s=8.0, min_samples=2)
    assert pauses.samples(["calc"]) == [5.0]
    for i, (tool, gap) in enumerate([("calc", 0.1), ("calc", 0.2), ("web", 9.0), ("web", 3.0)]):
        pauses.response(f"w{i}", [tool], now=0.0)
        pauses.request(f"w{i}", now=gap)
    assert pauses.samples(["calc"]) == [0.1, 0.2]
    assert pauses.samples(["calc", "web"]) == [8.0, 3.0]  # clipped to max_pause_s


class Clock:
    now = 100.0

    def __call__(self) -> float:
        return self.now


def _tracker(clock: Clock, pins: list, pool_pages: int = 100) -> AgentTracker:
    return AgentTracker(
        publish=lambda ste: None,
        block_size=4,
        pin=lambda key, tokens, rank: pins.append((key, len(tokens), rank)),
        unpin=lambda key: pins.append((key, None, None)),
        pin_budget_pages=pool_pages,
        engine_clock=clock,
        clock=clock,
        pool_pages=pool_pages,
    )


def _paused_conversation(tracker: AgentTracker, clock: Clock, name: str, tokens: int):
    call = tracker.call_of(RequestHints(workflow_id=name), None)
    tracker.started(call)
    clock.now += 1.0
    tracker.finished(call, ["search"])
    return tracker.pause(call, ["search"], list(range(tokens)))


def test_the_tracker_pins_a_conversation_only_when_its_reload_outweighs_its_share():
    clock, pins = Clock(), []
    tracker = _tracker(clock, pins)
    tracker.measured(ttft_s=0.04, missed_tokens=400)  # 1e-4 s a token
    # 40 tokens = 10 of 100 pages; reload 4 ms < 0.1 / 0.9 * 5 s held: not worth a pin
    assert _paused_conversation(tracker, clock, "small", 40) is None and pins == []
    tracker.measured(ttft_s=400.0, missed_tokens=400)  # a slow engine: ~0.5 s a token
    until = _paused_conversation(tracker, clock, "slow", 40)
    assert until is not None
    ((key, n, rank),) = pins
    assert key == "slow" and n == 40
    assert rank == pytest.approx(clock.now + 5.0 * TTL_MARGIN)  # the default pause, as rank
    assert tracker.pin_book.until("slow") == rank


def test_the_pause_rule_pins_every_pause_that_fits():
    clock, pins = Clock(), []
    tracker = _tracker(clock, pins)
    tracker.pin_rule = "pause"
    tracker.measured(ttft_s=0.04, missed_tokens=400)
    assert _paused_conversation(tracker, clock, "small", 40) is not None
    assert pins[0][0] == "small" and pins[0][2] == pytest.approx(clock.now + 5.0)
