"""KV pins (a paused conversation's prefix held on the device, giving way under pressure)
and the waiting queue's order (priority, then program-level first come, first served).
Torch-free: the KV manager on its own, and the cost-model engine."""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st

from agentrt.engine.config import EngineConfig
from agentrt.engine.llm_engine import LLMEngine
from agentrt.engine.sampling_params import SamplingParams
from agentrt.kvmanager import KVCacheManager

PS = 4


@dataclass(eq=False)
class Seq:
    request_id: str
    token_ids: list[int]
    agent_id: str | None = None
    prefix_len: int | None = None
    num_computed_tokens: int = 0
    num_cached_tokens: int = 0
    num_device_cached_tokens: int = 0
    block_table: list[int] = field(default_factory=list)
    num_tree_pages: int = 0
    tree_node: object = None
    num_preemptions: int = 0


def _run(kv: KVCacheManager, rid: str, tokens: list[int]) -> None:
    """One request start to end: match, allocate, compute, cache, release."""
    seq = Seq(rid, tokens)
    kv.match(seq)
    assert kv.allocate(seq, len(tokens) - seq.num_computed_tokens)
    seq.num_computed_tokens = len(tokens)
    kv.cache(seq)
    kv.release(seq)


def _cached(kv: KVCacheManager, tokens: list[int]) -> int:
    seq = Seq("probe", tokens + [0])
    kv.match(seq)
    n = seq.num_cached_tokens
    kv.release(seq)
    return n


def test_pinned_prefix_outlives_unpinned_ones_and_gives_way_last():
    kv = KVCacheManager(num_pages=6, page_size=PS)
    a, b = [1] * 8, [2] * 8  # two pages each
    _run(kv, "a", a)
    _run(kv, "b", b)
    assert kv.pins.pin("conv-a", a) == 8
    _run(kv, "c", [3] * 8)  # needs 2 of the 2 free pages
    _run(kv, "d", [4] * 8)  # evicts: b (unpinned) goes, a stays
    assert _cached(kv, a) == 8 and _cached(kv, b) == 0
    assert "conv-a" in kv.pins
    # a request that needs every page: the pin gives way instead of the request failing
    big = Seq("big", [5] * 24)
    kv.match(big)
    assert kv.allocate(big, 24)
    assert "conv-a" not in kv.pins and kv.pins.shed_count == 1
    kv.release(big)
    kv.check_integrity()


def test_under_pressure_the_pin_of_highest_rank_goes_first_then_the_newest():
    kv = KVCacheManager(num_pages=6, page_size=PS)
    convs = {name: [i + 1] * 4 for i, name in enumerate(("soon", "late", "mid"))}
    for name, tokens in convs.items():
        _run(kv, name, tokens)
    kv.pins.pin("soon", convs["soon"], rank=1.0)
    kv.pins.pin("late", convs["late"], rank=9.0)
    kv.pins.pin("mid", convs["mid"], rank=5.0)
    wide = Seq("wide", [7] * 16)  # 4 pages: 3 are free, so one pin must give way
    kv.match(wide)
    assert kv.allocate(wide, 16)
    assert "late" not in kv.pins and "soon" in kv.pins and "mid" in kv.pins
    kv.release(wide)
    assert kv.pins.pin("new", convs["mid"], rank=5.0) == 4  # same rank as "mid", newer
    assert kv.pins.shed() == "new" and kv.pins.shed() == "mid" and kv.pins.shed() == "soon"
    kv.check_integrity()


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.booleans()), min_size=1, max_size=25))
def test_pins_never_fail_an_allocation_and_pages_add_up(ops):
    """Random conversations, some pinned: every request is served (pins shed as needed)
    and page accounting holds after each."""
    kv = KVCacheManager(num_pages=8, page_size=PS)
    for step, (conv, pin) in enumerate(ops):
        tokens = [conv + 1] * (PS * (1 + step % 3))
        _run(kv, f"r{step}", tokens)
        if pin:
            kv.pins.pin(conv, tokens)
        kv.check_integrity()
    kv.pins.clear()
    assert kv.tree.evictable_pages == kv.tree.cached_pages  # no lock left behind


def test_engine_pin_and_unpin_apply_at_the_next_step():
    engine = LLMEngine.from_config(
        EngineConfig(backend="sim", profile="h100-llama3-8b", page_size=PS)
    )
    prompt = list(range(3, 3 + 4 * PS))
    engine.add_request(prompt, SamplingParams(max_tokens=2, ignore_eos=True))
    while engine.has_unfinished_requests():
        engine.step()
    engine.pin("w1", prompt)
    assert "w1" not in engine.kv.pins
    engine.step()
    assert "w1" in engine.kv.pins
    engine.unpin("w1")
    engine.step()
    assert "w1" not in engine.kv.pins
    engine.check_integrity()


def _admission_order(requests: list[dict]) -> list[int]:
    """Requests queued while the one running slot is busy, in the order they run."""
    engine = LLMEngine.from_config(
        EngineConfig(backend="sim", profile="h100-llama3-8b", max_num_seqs=1)
    )
    engine.add_request([7] * 32, SamplingParams(max_tokens=4, ignore_eos=True))
    engine.step()  # the first one runs
    ids = {}
    for i, kw in enumerate(requests):
        ids[engine.add_request([10 + i] * 32, SamplingParams(max_tokens=1), **kw)] = i
    order = []
    while engine.has_unfinished_requests():
        for out in engine.step():
            if out.finished and out.request_id in ids:
                order.append(ids[out.request_id])
    return order


def test_plain_requests_keep_arrival_order():
    assert _admission_order([{}, {}, {}, {}]) == [0, 1, 2, 3]


def test_priority_then_program_start_then_arrival():
    order = _admission_order(
        [
            {},  # a new program, arrived first
            {"program_start": -5.0},  # a step of a workflow that began earlier
            {"priority": -1},  # urgent
            {"program_start": -5.0},  # the same old workflow's next request
            {"priority": 1, "program_start": -10.0},
        ]
    )
    assert order == [2, 1, 3, 0, 4]
