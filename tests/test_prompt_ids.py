"""`LLMEngine.tokenize` on token-id prompts: the fast conversion of lists and tuples gives
exactly ``list(map(int, prompt))``, whatever the ids are (ints, numpy ints, bools,
floats, numeric strings, huge ints), and never consumes a generator twice."""

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
        [3.9, 4],
        ["12", 13],
        [2**70, 1],
        [],
    ],
)
def test_token_id_prompts_convert_like_int(engine: LLMEngine, prompt: list) -> None:
    got = engine.tokenize(prompt)
    assert got == list(map(int, prompt))
    assert all(type(t) is int for t in got)
    assert got is not prompt


def test_a_generator_is_read_once(engine: LLMEngine) -> None:
    assert engine.tokenize(x for x in [1, 2.5, "3"]) == [1, 2, 3]
