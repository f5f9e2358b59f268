"""A waiting request whose prefix is on the host tier, when the device has no room to
load it now, waits at the head of the queue for running requests to free room and then
loads it (agentrt's default); with `host_load_waits=False` it recomputes the prefix, as
SGLang's HiCache does. Torch-free: the KV manager on its own, and the cost-model engine."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from test_pins_and_priority import Seq, _run

from agentrt.engine.config import EngineConfig
from agentrt.engine.llm_engine import LLMEngine
from agentrt.engine.sampling_params import SamplingParams
from agentrt.kvmanager import KVCacheManager, Prepared

PS = 4


def _offloaded_behind_a_running_request(wait_for_room: bool):
    """`away` (2 pages) pushed to the host tier by a running request holding all 6
    device pages."""
    kv = KVCacheManager(
        num_pages=6, page_size=PS, policy="hicache", num_host_pages=16,
        wait_for_room=wait_for_room,
    )  # fmt: skip
    away = [1] * (2 * PS)
    _run(kv, "away", away)
    busy = Seq("busy", [2] * (6 * PS))
    kv.match(busy)
    assert kv.allocate(busy, len(busy.token_ids))
    assert kv.host.match(away).nodes and kv.allocator.num_free == 0
    return kv, away, busy


def test_a_load_with_no_room_waits_for_running_requests_to_free_it():
    kv, away, busy = _offloaded_behind_a_running_request(wait_for_room=True)
    back = Seq("back", [*away, 7])
    assert kv.prepare(back) is Prepared.NO_ROOM
    assert kv.prepare(back) is Prepared.NO_ROOM  # still none: nothing was freed
    busy.num_computed_tokens = len(busy.token_ids)
    kv.cache(busy)
    kv.release(busy)  # the running request finishes
    while (prepared := kv.prepare(back)) is not Prepared.READY:
        assert prepared is Prepared.LOADING
        kv.wait_for_loads()
    kv.match(back)
    assert back.num_cached_tokens == len(away) and kv.stats.reactive_loads == 1
    kv.release(back)
    kv.check_integrity()


def test_without_waiting_a_load_with_no_room_is_recomputed():
    kv, away, busy = _offloaded_behind_a_running_request(wait_for_room=False)
    back = Seq("back", [*away, 7])
    assert kv.prepare(back) is Prepared.READY
    kv.match(back)
    assert back.num_cached_tokens == 0 and kv.stats.reactive_loads == 0
    kv.release(back)
    kv.release(busy)
    kv.check_integrity()


def _engine(waits: bool) -> LLMEngine:
    return LLMEngine.from_config(
        EngineConfig(
            backend="sim", profile="h100-llama3-8b", page_size=PS, num_pages=8,
            num_host_pages=32, eviction_policy="hicache", max_num_batched_tokens=8,
            host_load_waits=waits,
        )
    )  # fmt: skip


def _drain(engine: LLMEngine, events: list[str]) -> dict:
    """Run to the end; ``events`` gets "<id> first" and "<id> done" in order."""
    done = {}
    while engine.has_unfinished_requests():
        for out in engine.step():
            if f"{out.request_id} first" not in events and out.token_ids:
                events.append(f"{out.request_id} first")
            if out.finished:
                events.append(f"{out.request_id} done")
                done[out.request_id] = out
    return done


def _busy(waits: bool) -> tuple[LLMEngine, list[int]]:
    """`first` (4 pages) on the host tier only, pushed there by `busy`, which holds 5 of
    the 8 pages and decodes on: 2-3 pages are free or evictable."""
    engine = _engine(waits)
    first = list(range(3, 3 + 4 * PS))
    once = SamplingParams(max_tokens=1, ignore_eos=True)
    for rid, prompt in (("first", first), ("filler", [40] * (4 * PS))):
        engine.add_request(prompt, once, rid)
        _drain(engine, [])
    engine.add_request([50] * (5 * PS), SamplingParams(max_tokens=4, ignore_eos=True), "busy")
    for _ in range(3):  # `busy` computes its prompt, pushing `first` to the host tier
        engine.step()
    kv = engine.kv
    assert not kv.tree.match_prefix(first).num_tokens and kv.host.match(first).nodes
    assert 2 <= kv.allocator.num_free + kv.tree.evictable_pages < 4
    return engine, first


def _returning_conversation(waits: bool) -> tuple[LLMEngine, dict, list[str]]:
    """A conversation of 4 pages comes back while another request holds 5 of the 8
    pages: its load does not fit, its first chunk (8 tokens, 2 pages) would. A new
    request arrives behind it."""
    engine, first = _busy(waits)
    params = SamplingParams(max_tokens=2, ignore_eos=True)
    engine.add_request([*first, 90, 91, 92, 93], params, "back")
    engine.add_request([70, 71, 72], params, "new")
    events: list[str] = []
    done = _drain(engine, events)
    engine.check_integrity()
    return engine, done, events


def test_the_returning_request_waits_loads_and_keeps_its_place_in_the_queue():
    engine, done, events = _returning_conversation(waits=True)
    stats = engine.kv.stats
    assert stats.host_hit_tokens == 4 * PS and stats.reactive_loads == 1
    assert engine.stats.preemptions == 0
    # the queue behind it waited with it, until `busy` freed room
    assert events.index("busy done") < events.index("new first")
    assert all(not out.error for out in done.values())


def test_recomputing_instead_costs_more_and_gives_the_same_tokens():
    waited_engine, waited, _ = _returning_conversation(waits=True)
    engine, recomputed, _ = _returning_conversation(waits=False)
    # `back` is admitted to recompute its prefix, then preempted by `busy`'s growth
    assert engine.stats.preemptions >= 1
    assert engine.kv.stats.recomputed_tokens > waited_engine.kv.stats.recomputed_tokens
    assert {r: o.token_ids for r, o in recomputed.items()} == {
        r: o.token_ids for r, o in waited.items()
    }


def test_a_request_aborted_while_it_waits_for_room_frees_the_queue_behind_it():
    engine, first = _busy(waits=True)
    once = SamplingParams(max_tokens=1, ignore_eos=True)
    engine.add_request([*first, 90], once, "back")
    engine.add_request([70, 71, 72], once, "new")
    engine.step()
    assert engine.batcher.waiting[0].request_id == "back"  # no room for its load yet
    engine.abort("back")
    events: list[str] = []
    done = _drain(engine, events)
    assert done["back"].finish_reason == "abort" and not done["new"].error
    assert engine.kv.stats.reactive_loads == 0
    engine.check_integrity()


_OP = st.one_of(
    st.tuples(st.just("add"), st.integers(0, 3), st.integers(1, 40), st.integers(1, 3)),
    st.tuples(st.just("pin"), st.integers(0, 3), st.floats(0, 9)),
    st.tuples(st.just("unpin"), st.integers(0, 3)),
    st.tuples(st.just("abort"), st.integers(0, 60)),
    st.tuples(st.just("step"), st.integers(1, 4)),
)


def _fuzzed_run(ops: list[tuple], pool: tuple[int, int, int, int], waits: bool):
    """Random requests over four shared conversations on a small device pool with a
    host tier: pins, unpins and aborts in between. Returns (outputs, aborted ids, steps
    the drain took)."""
    pages, host_pages, budget, seqs = pool
    engine = LLMEngine.from_config(
        EngineConfig(
            backend="sim", profile="h100-llama3-8b", page_size=PS, num_pages=pages,
            num_host_pages=host_pages, eviction_policy="hicache",
            max_num_batched_tokens=budget, max_num_seqs=seqs, host_load_waits=waits,
        )
    )  # fmt: skip
    limit = pages * PS - 4
    convs = [[100 * c + i for i in range(limit)] for c in range(4)]
    done: dict[str, object] = {}
    added: list[str] = []
    aborted: set[str] = set()

    def step() -> None:
        for out in engine.step():
            if out.finished:
                done[out.request_id] = out

    for op in ops:
        if op[0] == "add":
            _, conv, length, max_tokens = op
            prompt = convs[conv][: min(length, limit)]
            params = SamplingParams(max_tokens=max_tokens, ignore_eos=True)
            added.append(engine.add_request(prompt, params, f"r{len(added)}"))
        elif op[0] == "pin":
            engine.pin(op[1], convs[op[1]], rank=op[2])
        elif op[0] == "unpin":
            engine.unpin(op[1])
        elif op[0] == "abort" and op[1] < len(added) and added[op[1]] not in done:
            engine.abort(added[op[1]])
            aborted.add(added[op[1]])
        elif op[0] == "step":
            for _ in range(op[1]):
                step()
    steps = 0
    while engine.has_unfinished_requests() and steps < 2_000:
        step()
        steps += 1
    engine.check_integrity()
    return {r: done.get(r) for r in added}, aborted, steps


@settings(max_examples=300, deadline=None)
@given(
    st.lists(_OP, min_size=1, max_size=120),
    st.tuples(
        st.integers(4, 8), st.integers(2, 16), st.sampled_from([4, 8, 64]), st.integers(1, 5)
    ),  # pages, host pages, token budget, batch size
)
def test_waiting_for_room_never_stalls_the_engine_nor_fails_a_request(ops, pool):
    """Whatever the pool, pins and aborts: every request ends (no wait for room that
    never comes), those not aborted without error and with the tokens they get when loads
    never wait (the cost model's tokens depend only on the request and the position, so
    on it this checks that each request got all of its tokens)."""
    waited, aborted, steps = _fuzzed_run(ops, pool, waits=True)
    recomputed, _, _ = _fuzzed_run(ops, pool, waits=False)
    assert steps < 2_000
    for rid, out in waited.items():
        assert out is not None and out.finished
        if rid not in aborted:
            assert not out.error and out.token_ids == recomputed[rid].token_ids


def test_with_nothing_running_a_load_that_pins_keep_out_sheds_them():
    """The wait must end: when no running request will free room, the pins give way."""
    ops = [("add", 1, 12, 1), ("add", 2, 8, 1), ("step", 2), ("add", 1, 5, 1), ("pin", 2, 0.0)]
    outputs, _, steps = _fuzzed_run(ops, (4, 3, 64, 1), waits=True)
    assert steps < 2_000 and all(out is not None and not out.error for out in outputs.values())
