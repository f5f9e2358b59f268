"""The engine core: torch-free, and implicit decodes only where the runner declares them."""

from __future__ import annotations

import pytest
from engine_helpers import make_engine, run_to_completion
from fresh_process import run_fresh

from agentrt.engine.config import EngineConfig
from agentrt.engine.llm_engine import LLMEngine
from agentrt.engine.sampling_params import SamplingParams


def test_engine_core_simulator_and_replay_import_no_torch():
    """Constrained requests too: the cost-model runner ignores their constraints."""
    script = (
        "import sys\n"
        "import agentrt.simulation.cosim, agentrt.trace.replay, agentrt.engine.llm_engine\n"
        "from agentrt.engine.config import EngineConfig\n"
        "from agentrt.engine.llm_engine import LLMEngine\n"
        "from agentrt.engine.sampling_params import SamplingParams\n"
        "from agentrt.engine.structured_params import StructuredOutputParams as S\n"
        "e = LLMEngine.from_config(EngineConfig(backend='sim', profile='l4-llama3-8b'))\n"
        "e.add_request([101, 102, 103], request_id='r')\n"
        "p = SamplingParams(max_tokens=4, min_tokens=2, structured_output=S(kind='json_object'))\n"
        "e.add_request([101, 102, 103], p, request_id='c')\n"
        "assert e.requests['c'].constraints == ()\n"
        "done = {}\n"
        "while e.has_unfinished_requests():\n"
        "    done.update((o.request_id, o) for o in e.step() if o.finished)\n"
        "assert len(done['c'].token_ids) == 4, done['c']\n"
        "print('ok')\n"
    )
    assert run_fresh(script, ("torch", "transformers")).strip() == "ok"


def test_a_runner_without_implicit_decodes_refuses_them_and_serves_on(tiny_models):
    engine = make_engine(tiny_models["llama"])
    assert not engine.runner.supports_implicit_decodes
    with pytest.raises(ValueError, match="TorchModelRunner has no implicit decodes"):
        engine.implicit_decodes = True
    assert not engine.implicit_decodes and engine.runner.decode_group is None
    assert engine.stream_outputs  # untouched
    engine.implicit_decodes = False  # a no-op
    params = SamplingParams(max_tokens=3, ignore_eos=True)
    (out,) = run_to_completion(engine, [[5, 6, 7, 8]], params)
    assert out.finish_reason == "length" and len(out.token_ids) == 3


def test_sim_engine_turns_implicit_decodes_on_and_off():
    engine = LLMEngine.from_config(EngineConfig(backend="sim", profile="l4-llama3-8b"))
    assert engine.runner.supports_implicit_decodes and engine.runner.decode_group is None
    engine.implicit_decodes = True
    assert engine.runner.decode_group is not None
    assert not engine.stream_outputs  # outputs only when requests finish
    engine.implicit_decodes = False
    assert engine.runner.decode_group is None


def test_sim_engine_loads_its_tokenizer_once_when_asked():
    engine = LLMEngine.from_config(EngineConfig(backend="sim", profile="l4-llama3-8b"))
    assert engine.tokenizer is None  # not loaded for token-id prompts
    tokenizer = engine.ensure_tokenizer()
    assert tokenizer is not None and engine.ensure_tokenizer() is tokenizer
    assert engine.tokenize("hello") == tokenizer.encode("hello", add_special_tokens=False)
