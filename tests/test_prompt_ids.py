"""`LLMEngine.tokenize` on token-id prompts: the fast conversion of lists and tuples gives
exactly ``list(map(int, prompt))`` for integer ids (ints, numpy ints, bools, huge ints),
refuses anything else (floats, numeric strings) with a clear error, and never consumes a
generator twice."""

from __future__ import annotations

import numpy as np
import pytest

from agentrt.engine.config import EngineConfig
from agentrt.engine.llm_engine import LLMEngine


@pytest.fixture(scope="module")
def engine() -> LLMEngine:
    return LLMEngine.from_config(EngineConfig(backend="sim", kv_cache_tokens=4096))


@pytest.mark.parametrize(
    "prompt",
    [
        [101, 102, 103],
        (7, 8, 9),
        [np.int64(5), np.int32(6)],
        [True, 2],
        [2**70, 1],
        [],
    ],
)
def test_token_id_prompts_convert_like_int(engine: LLMEngine, prompt: list) -> None:
    got = engine.tokenize(prompt)
    assert got == list(map(int, prompt))
    assert all(type(t) is int for t in got)
    assert got is not prompt


@pytest.mark.parametrize(
    ("prompt", "message"),
    [
        ([3.9, 4], r"integers, got 3.9 \(float\) at position 0"),
        ((5, 4.0), r"integers, got 4.0 \(float\) at position 1"),
        (["12", 13], r"integers, got '12' \(str\) at position 0"),
        ([np.float64(7.0)], "integers, got"),
        ([float("nan")], "integers, got nan"),
        (None, "a prompt is a string or a list of integer token ids, got NoneType"),
        (5, "got int"),
    ],
)
def test_non_integer_ids_are_refused(engine: LLMEngine, prompt: object, message: str) -> None:
    with pytest.raises(TypeError, match=message):
        engine.tokenize(prompt)  # type: ignore[arg-type]


def test_a_generator_is_read_once(engine: LLMEngine) -> None:
    assert engine.tokenize(x for x in [1, np.int64(2), True]) == [1, 2, 1]


def test_checked_ids_queue_the_same_sequence() -> None:
    """`add_request(ids_checked=True)` (the co-simulation's synthetic prompts) queues the
    same token ids, in a copy, as the checked path; the prompt builder's ids lie inside
    the sim profile's vocabulary, so the co-simulation may pass it."""
    from agentrt.simulation.synthetic_prompts import SyntheticPrompts

    prompts = SyntheticPrompts()
    ids, prefix_len = prompts.build("You are Ada, a baker.", "Where do you go next?")
    assert all(prompts.id_bound > t >= 100 for t in ids)
    queued = []
    for checked in (False, True):
        eng = LLMEngine.from_config(EngineConfig(backend="sim", kv_cache_tokens=4096))
        assert eng.vocab_size is not None and prompts.id_bound <= eng.vocab_size
        rid = eng.add_request(ids, agent_id="a", prefix_len=prefix_len, ids_checked=checked)
        seq = eng.requests[rid]
        assert seq.token_ids is not ids and seq.prefix_len == prefix_len
        queued.append(seq.token_ids)
    assert queued[0] == queued[1] == ids
    eng = LLMEngine.from_config(EngineConfig(backend="sim", kv_cache_tokens=4096))
    with pytest.raises(ValueError, match="empty prompt"):
        eng.add_request([], ids_checked=True)
    with pytest.raises(ValueError, match="must be in"):  # unchecked ids are still checked
        eng.add_request([eng.vocab_size])
