"""A pin ends when the paused conversation's next request is admitted (it then holds its
prefix itself), not when that request arrives; and a host load that finds the device
pool pinned full sheds pins rather than recompute what the host holds. Torch-free."""

from __future__ import annotations

from test_pins_and_priority import Seq, _run

from agentrt.engine.config import EngineConfig
from agentrt.engine.llm_engine import LLMEngine
from agentrt.engine.sampling_params import SamplingParams
from agentrt.kvmanager import KVCacheManager, Prepared

PS = 4


def _drain(engine: LLMEngine) -> dict:
    done = {}
    while engine.has_unfinished_requests():
        done.update((o.request_id, o) for o in engine.step() if o.finished)
    return done


def test_the_next_request_takes_the_pin_over_when_it_is_admitted():
    engine = LLMEngine.from_config(
        EngineConfig(backend="sim", profile="h100-llama3-8b", page_size=PS, max_num_seqs=1)
    )
    first = list(range(3, 3 + 4 * PS))
    rid = engine.add_request(first, SamplingParams(max_tokens=5, ignore_eos=True))
    out = _drain(engine)[rid]
    conversation = [*first, *out.token_ids]
    engine.pin("conv", conversation)
    engine.add_request([9] * 8, SamplingParams(max_tokens=40, ignore_eos=True))
    engine.step()  # the pin is applied; the other request takes the only running slot
    nxt = engine.add_request(
        [*conversation, 11, 12, 13], SamplingParams(max_tokens=1, ignore_eos=True),
        pin_key="conv",
    )  # fmt: skip
    for _ in range(5):
        engine.step()
        assert "conv" in engine.kv.pins  # waiting: the pin still holds its prefix
    done = _drain(engine)
    assert "conv" not in engine.kv.pins  # admitted: the request holds it instead
    assert done[nxt].num_device_cached_tokens >= len(conversation) // PS * PS - PS
    engine.check_integrity()


def test_a_request_aborted_before_admission_ends_the_pin_it_would_take_over():
    engine = LLMEngine.from_config(
        EngineConfig(backend="sim", profile="h100-llama3-8b", page_size=PS, max_num_seqs=1)
    )
    first = list(range(3, 3 + 4 * PS))
    engine.add_request(first, SamplingParams(max_tokens=2, ignore_eos=True))
    _drain(engine)
    engine.pin("conv", first)
    engine.add_request([9] * 8, SamplingParams(max_tokens=20, ignore_eos=True))
    engine.step()
    nxt = engine.add_request([*first, 5], SamplingParams(max_tokens=1), pin_key="conv")
    engine.step()
    assert "conv" in engine.kv.pins
    engine.abort(nxt)
    engine.step()
    assert "conv" not in engine.kv.pins
    _drain(engine)
    engine.check_integrity()


def test_a_host_load_sheds_pins_instead_of_recomputing():
    kv = KVCacheManager(num_pages=6, page_size=PS, policy="hicache", num_host_pages=16)
    away = [1] * (2 * PS)
    _run(kv, "away", away)
    pinned = [[2 + i] * (2 * PS) for i in range(3)]
    for i, tokens in enumerate(pinned):
        _run(kv, f"p{i}", tokens)  # pushes `away` to the host tier
        kv.pins.pin(f"p{i}", tokens, rank=float(i))
    assert kv.allocator.num_free == 0
    back = Seq("back", [*away, 7])
    while kv.prepare(back) is not Prepared.READY:  # its prefix loads from host (a pin gave way) ...
        kv.poll()
    kv.match(back)
    assert kv.stats.reactive_loads == 1 and back.num_cached_tokens == len(away)
    assert "p2" not in kv.pins and "p0" in kv.pins  # ... the highest rank first
    kv.release(back)
    kv.check_integrity()
